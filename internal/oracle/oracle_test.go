package oracle_test

import (
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/oracle"
)

// recorder is a testing.TB that records whether it was skipped or failed.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.skipped = args[0].(string) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = f }

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		env        string
		skip, fail bool
	}{{"", true, false}, {"0", true, false}, {"1", false, true}} {
		t.Setenv(oracle.Env, tc.env)
		r := &recorder{TB: t}
		oracle.Missing(r, "no %s", "ORT")
		if (r.skipped != "") != tc.skip || (r.failed != "") != tc.fail || tc.skip && !strings.Contains(r.skipped, "no ORT") {
			t.Errorf("%s=%q: skipped %q failed %q", oracle.Env, tc.env, r.skipped, r.failed)
		}
	}
}
