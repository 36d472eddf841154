package ortbackend_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/critlab/critlab/harness/ortbackend"
	"github.com/critlab/critlab/preprocessing"
	"github.com/critlab/critlab/runs"
)

// A refused deficit lists the valid deficits once, or not at all when the
// error lists the valid parameters (runs.Check refuses it in Validate,
// before the backend). Check of a CPU config needs no ONNX Runtime.
func TestCheckNamesValidDeficitsOnce(t *testing.T) {
	for _, tc := range []struct {
		deficit string
		lists   int // how often the valid deficits are listed
	}{{"blurr", 1}, {"blur:size=x", 1}, {"blur:sise=4", 0}} {
		t.Run(tc.deficit, func(t *testing.T) {
			cfg := e2eConfig()
			cfg.Deficits = []runs.Window{{Deficit: tc.deficit, Start: 0, End: 1}}
			err := runs.Check(cfg, ortbackend.New(ortbackend.Options{}))
			if !errors.Is(err, runs.ErrInvalidConfig) || strings.Count(err.Error(), preprocessing.DeficitUsage) != tc.lists {
				t.Fatalf("err = %v, want ErrInvalidConfig listing the deficits %d times", err, tc.lists)
			}
		})
	}
}
