// Package oracle decides what a test does when an independent oracle it
// needs is missing (ONNX Runtime, the Python venv or one of its modules):
// it skips, saying how to get the oracle, or, with
// CRITLAB_REQUIRE_ORACLES=1 (set by .ci/run), it fails, so that a green
// run cannot hide checks that did not run.
package oracle

import (
	"fmt"
	"os"
	"testing"
)

// Env is the environment variable that turns missing oracles into
// failures.
const Env = "CRITLAB_REQUIRE_ORACLES"

// Missing skips t, or fails it when Env is 1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(Env) == "1" {
		t.Fatalf("%s (%s=1: every oracle must run)", msg, Env)
		return
	}
	t.Skip(msg)
}
