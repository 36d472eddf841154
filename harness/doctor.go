package harness

import (
	"fmt"
	"strings"

	"github.com/critlab/critlab/harness/device"
	"github.com/critlab/critlab/models/graph"
)

// Report is what `critlab doctor` prints about the runtime.
type Report struct {
	Library   string
	Version   string
	Threads   int
	Providers []ProviderStatus
}

// ProviderStatus says whether an execution provider can run a session.
type ProviderStatus struct {
	Name   string
	OK     bool
	Status string
	// Err is why the provider failed, with the fix (nil when OK).
	Err error
}

// Diagnose opens the runtime and tries a tiny session on the CPU and, when
// asked for, on CUDA, reporting what works and how to fix what does not.
func Diagnose(o RuntimeOptions) (Report, error) {
	rep := Report{}
	cpuOpts := o
	cpuOpts.Device = "cpu"
	rt, err := Open(cpuOpts)
	if err != nil {
		return rep, err
	}
	defer rt.Close()
	rep.Library, rep.Version, rep.Threads = rt.Library(), rt.Version(), rt.Threads()
	rep.Providers = append(rep.Providers, probe(rt, "cpu"))
	dev, err := device.Parse(o.Device)
	if err != nil {
		return rep, err
	}
	if dev.Kind != "cuda" {
		rep.Providers = append(rep.Providers, ProviderStatus{Name: "cuda", Status: "not checked (use --device cuda)"})
		return rep, nil
	}
	rt.device = dev
	rt.opts.CUDA = o.CUDA
	p := probe(rt, "cuda")
	rep.Providers = append(rep.Providers, p)
	if !p.OK {
		return rep, p.Err
	}
	return rep, nil
}

// probe runs a 3×3 Conv and a Relu on the runtime's current device and checks
// the result: on CUDA the Conv needs cuDNN, which the provider opens only when
// a session first runs, and a wrong sum means a broken kernel or library.
func probe(rt *Runtime, name string) ProviderStatus {
	b := graph.NewBuilder("probe")
	x := b.Input("x", graph.Float, 1, 1, 4, 4)
	b.Param("w", []int64{1, 1, 3, 3}, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1})
	c := b.Op("Conv", []string{x, "w"}, graph.Ints("pads", 1, 1, 1, 1), graph.Ints("kernel_shape", 3, 3))
	b.NodeNamed("Relu", []string{c}, []string{"y"})
	b.Output("y", graph.Float, 1, 1, 4, 4)
	data, err := graph.Marshal(b.Model())
	if err == nil {
		var s *Session
		if s, err = rt.NewSession(data, []string{"x"}, []string{"y"}); err == nil {
			in := make([]float32, 16)
			for i := range in {
				in[i] = 1
			}
			var out []Tensor
			out, err = s.Run([]Tensor{{Shape: []int64{1, 1, 4, 4}, F32: in}})
			s.Close()
			// With all ones and zero padding, corners sum 4 neighbours, edges 6, inner cells 9.
			if err == nil && (out[0].F32[0] != 4 || out[0].F32[1] != 6 || out[0].F32[5] != 9) {
				err = fmt.Errorf("3×3 Conv of ones gave %v, want 4, 6, 9 at corner, edge, inside", out[0].F32)
			}
		}
	}
	if err != nil {
		// The status is the reason's first line; Err keeps the hint.
		first, _, _ := strings.Cut(err.Error(), "\n")
		return ProviderStatus{Name: name, Status: "FAILED: " + first, Err: err}
	}
	return ProviderStatus{Name: name, OK: true, Status: "ok"}
}
