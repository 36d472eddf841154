package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/critlab/critlab/harness"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/cpu"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check the ONNX Runtime library, execution providers, threads and CPU features",
		Flags: runtimeFlags("device", "ort-lib", "threads"),
		Action: func(c *cli.Context) error {
			w := c.App.Writer
			fmt.Fprintf(w, "go:        %s %s/%s, %d CPUs\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
			fmt.Fprintf(w, "cpu:       %s\n", cpuFeatures())
			rep, err := harness.Diagnose(runtimeOptions(c))
			fmt.Fprintf(w, "library:   %s\n", orNone(rep.Library))
			fmt.Fprintf(w, "version:   %s\n", orNone(rep.Version))
			fmt.Fprintf(w, "threads:   %d intra-op\n", rep.Threads)
			for _, p := range rep.Providers {
				fmt.Fprintf(w, "provider:  %-5s %s\n", p.Name, p.Status)
			}
			return err
		},
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func cpuFeatures() string {
	var f []string
	for _, x := range []struct {
		name string
		ok   bool
	}{
		{"sse4.2", cpu.X86.HasSSE42}, {"avx", cpu.X86.HasAVX}, {"avx2", cpu.X86.HasAVX2}, {"fma", cpu.X86.HasFMA},
		{"avx512f", cpu.X86.HasAVX512F}, {"avx512bw", cpu.X86.HasAVX512BW}, {"avx512vnni", cpu.X86.HasAVX512VNNI},
		{"avx512bf16", cpu.X86.HasAVX512BF16},
	} {
		if x.ok {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return "(no x86 SIMD features detected)"
	}
	return strings.Join(f, " ")
}
