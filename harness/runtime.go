package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/critlab/critlab/harness/device"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv names the environment variable that points critlab at an ONNX
// Runtime shared library (for example a CUDA build).
const LibraryEnv = "CRITLAB_ORT_LIB"

// MinVersion is the oldest ONNX Runtime critlab accepts: onnxruntime_go is
// built against the 1.24 C API, which older libraries do not provide.
const MinVersion = "1.24.0"

// ErrNoLibrary means no ONNX Runtime library could be found.
var ErrNoLibrary = errors.New("harness: ONNX Runtime library not found")

// ErrNoCUDA means the CUDA execution provider cannot be used (docs/cuda.md).
var ErrNoCUDA = errors.New("CUDA unavailable")

// RuntimeOptions selects the library, execution provider and threads.
type RuntimeOptions struct {
	// Library is the path of libonnxruntime.so; empty means $CRITLAB_ORT_LIB,
	// then .deps/onnxruntime/libonnxruntime.so in the working folder or a
	// parent of it or of the executable (where `make setup` puts it).
	Library string
	// Device is "cpu" (the default) or "cuda" / "cuda:N".
	Device string
	// Threads is ORT's intra-op thread count; 0 means one per core.
	Threads int
	// MemArena turns on ORT's CPU memory arena, with its memory pattern off:
	// faster steps at no higher peak memory (see sessionOptions). The
	// floats are the same either way.
	MemArena bool
	// Spin lets ORT's idle intra-op threads spin-wait for work instead of
	// sleeping (ORT's own default; see sessionOptions).
	Spin bool
	// CUDA holds the CUDA provider options recorded in the run config.
	CUDA device.CUDAOptions
}

// Runtime is an initialised ONNX Runtime environment.
type Runtime struct {
	opts    RuntimeOptions
	lib     string
	version string
	device  device.Device
}

var (
	envMu   sync.Mutex
	envRefs int
	envLib  string
)

// Open finds and loads the ONNX Runtime library and initialises the
// environment. The environment is process-wide: several Runtimes may be open
// at once if they name the same library. For a CUDA device it loads the CUDA
// provider first, so a set-up without one is refused (ErrNoCUDA) before
// anything else is built.
func Open(o RuntimeOptions) (*Runtime, error) {
	r, err := openEnv(o)
	if err != nil || r.device.Kind != "cuda" {
		return r, err
	}
	co, err := r.cudaOptions()
	if err != nil {
		r.Close()
		return nil, err
	}
	co.Destroy()
	return r, nil
}

func openEnv(o RuntimeOptions) (*Runtime, error) {
	dev, err := device.Parse(o.Device)
	if err != nil {
		return nil, err
	}
	lib, err := FindLibrary(o.Library)
	if err != nil {
		return nil, err
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	envMu.Lock()
	defer envMu.Unlock()
	if envRefs > 0 && lib != envLib {
		return nil, fmt.Errorf("harness: library %s requested while %s is loaded; one process uses one ONNX Runtime library", lib, envLib)
	}
	if envRefs == 0 {
		// ORT's telemetry keeps a device id and an event database under
		// $HOME/.cache unless switched off before the environment exists
		// (onnxruntime#27379); DisableTelemetry below stops its events.
		os.Setenv("ORT_DISABLE_TELEMETRY", "1")
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			return nil, fmt.Errorf("harness: load ONNX Runtime %s: %w\n---> HINT: critlab needs ONNX Runtime >= %s for linux x64; run `make setup`, or point %s at a working libonnxruntime.so", lib, err, MinVersion, LibraryEnv)
		}
		if err := ort.DisableTelemetry(); err != nil {
			ort.DestroyEnvironment()
			return nil, fmt.Errorf("harness: disable ONNX Runtime telemetry: %w", err)
		}
		if v := ort.GetVersion(); versionLess(v, MinVersion) {
			ort.DestroyEnvironment()
			return nil, fmt.Errorf("harness: ONNX Runtime %s at %s is too old (need >= %s)\n---> HINT: run `make setup` or set %s", v, lib, MinVersion, LibraryEnv)
		}
		// One CPU memory arena for every session of the process that uses
		// one (RuntimeOptions.MemArena): the eval, Fisher and train-step
		// sessions of a run, and the runs of a sweep, reuse each other's
		// freed blocks instead of each keeping its own (vgg11_bn at 224 px,
		// batch 8: evaluation added 200 MiB to the peak with arenas of
		// their own, nothing with the shared one). It lives until the last
		// Runtime closes, so a process keeps the largest footprint any of
		// its sessions reached.
		if err := registerArena(); err != nil {
			ort.DestroyEnvironment()
			return nil, fmt.Errorf("harness: ONNX Runtime's shared CPU arena: %w", err)
		}
		envLib = lib
	}
	envRefs++
	return &Runtime{opts: o, lib: lib, version: ort.GetVersion(), device: dev}, nil
}

// Close releases the runtime; the environment goes when the last one closes.
func (r *Runtime) Close() error {
	envMu.Lock()
	defer envMu.Unlock()
	if r == nil || envRefs == 0 {
		return nil
	}
	envRefs--
	if envRefs == 0 {
		if err := ort.DestroyEnvironment(); err != nil {
			return fmt.Errorf("harness: destroy ONNX Runtime environment: %w", err)
		}
	}
	return nil
}

// Library is the path of the loaded library.
func (r *Runtime) Library() string { return r.lib }

// Version is the loaded library's version string.
func (r *Runtime) Version() string { return r.version }

// Threads is the intra-op thread count sessions use.
func (r *Runtime) Threads() int { return r.opts.Threads }

// Device is the execution provider sessions use.
func (r *Runtime) Device() device.Device { return r.device }

// FindLibrary resolves the ONNX Runtime library path (see RuntimeOptions).
func FindLibrary(explicit string) (string, error) {
	if explicit != "" {
		return checkLibrary(explicit, "--ort-lib")
	}
	if env := os.Getenv(LibraryEnv); env != "" {
		return checkLibrary(env, "$"+LibraryEnv)
	}
	var roots []string
	if wd, err := os.Getwd(); err == nil {
		roots = append(roots, wd)
	}
	if exe, err := os.Executable(); err == nil {
		roots = append(roots, filepath.Dir(exe))
	}
	for _, root := range roots {
		for dir := root; ; dir = filepath.Dir(dir) {
			p := filepath.Join(dir, ".deps", "onnxruntime", "libonnxruntime.so")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", fmt.Errorf("%w: looked for .deps/onnxruntime/libonnxruntime.so above %s\n---> HINT: run `make setup` in the critlab checkout, or set %s to a libonnxruntime.so (>= %s)", ErrNoLibrary, strings.Join(roots, " and "), LibraryEnv, MinVersion)
}

func checkLibrary(path, source string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s=%s: %v\n---> HINT: run `make setup`, or fix %s", ErrNoLibrary, source, path, err, source)
	}
	if st.IsDir() {
		return "", fmt.Errorf("%w: %s=%s is a folder; name the libonnxruntime.so file inside it", ErrNoLibrary, source, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	return abs, nil
}

// versionLess compares dotted numeric versions ("1.29.0" < "1.30.0").
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// registerArena registers the environment's shared CPU arena with ORT's
// default settings; sessions opt in with session.use_env_allocators.
func registerArena() error {
	info, err := ort.GetMemoryInfo()
	if err != nil {
		return err
	}
	cfg, err := ort.NewArenaCfg(0, -1, -1, -1)
	if err != nil {
		return err
	}
	defer cfg.Destroy()
	return ort.CreateAndRegisterAllocator(info, cfg)
}
