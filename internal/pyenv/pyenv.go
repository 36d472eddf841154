// Package pyenv finds the Python interpreter that critlab's tests use as an
// independent oracle (onnx's checker and shape inference, pyarrow): the one
// $CRITLAB_PYTHON names, else the virtual environment `make setup` makes in
// .deps/py of the checkout.
package pyenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/oracle"
)

// Env is the environment variable naming the interpreter.
const Env = "CRITLAB_PYTHON"

// Find returns the interpreter path: $CRITLAB_PYTHON, else .deps/py/bin/python
// in the working folder or the nearest parent that has one.
func Find() (string, error) {
	if py := os.Getenv(Env); py != "" {
		return py, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find python: %w", err)
	}
	for {
		py := filepath.Join(dir, ".deps", "py", "bin", "python")
		if _, err := os.Stat(py); err == nil {
			return py, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no .deps/py/bin/python above the working folder (run `make setup` or set %s)", Env)
		}
		dir = parent
	}
}

// Has reports whether the interpreter imports every module.
func Has(py string, modules ...string) error {
	if len(modules) == 0 {
		return nil
	}
	out, err := exec.Command(py, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import %s: %v: %s", py, strings.Join(modules, ", "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Require returns an interpreter that imports modules, or skips the test
// saying how to get one.
func Require(t testing.TB, modules ...string) string {
	t.Helper()
	py, err := Find()
	if err == nil {
		err = Has(py, modules...)
	}
	if err != nil {
		oracle.Missing(t, "Python oracle unavailable (run `make setup` or set %s): %v", Env, err)
	}
	return py
}
