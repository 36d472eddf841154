package harness

import (
	"fmt"

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
	dev, err := ParseDevice(o.Device)
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
		return rep, fmt.Errorf("CUDA provider unavailable: %s", p.Status)
	}
	return rep, nil
}

// probe runs a one-node model on the runtime's current device.
func probe(rt *Runtime, name string) ProviderStatus {
	b := graph.NewBuilder("probe")
	x := b.Input("x", graph.Float, 1, 4)
	b.NodeNamed("Relu", []string{x}, []string{"y"})
	b.Output("y", graph.Float, 1, 4)
	data, err := graph.Marshal(b.Model())
	if err == nil {
		var s *Session
		if s, err = rt.NewSession(data, []string{"x"}, []string{"y"}); err == nil {
			_, err = s.Run([]Tensor{{Shape: []int64{1, 4}, F32: []float32{-1, 0, 1, 2}}})
			s.Close()
		}
	}
	if err != nil {
		return ProviderStatus{Name: name, Status: "FAILED: " + err.Error()}
	}
	return ProviderStatus{Name: name, OK: true, Status: "ok"}
}
