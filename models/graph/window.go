package graph

import (
	"fmt"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// Window is the sliding window of a Conv or pooling node resolved against
// its input's spatial dimensions: per spatial axis the kernel, strides,
// dilations and explicit begin and end pads (auto_pad resolved).
type Window struct {
	Kernel, Strides, Dilations, PadBegin, PadEnd []int64
	Ceil                                         bool // ceil_mode
}

// ResolveWindow reads n's window attributes for input spatial dims sp and
// the given kernel; SAME auto_pad needs static sp.
func ResolveWindow(n *pb.NodeProto, sp, kernel []int64) (*Window, error) {
	r := len(sp)
	if len(kernel) != r {
		return nil, fmt.Errorf("kernel %v for %d spatial dims", kernel, r)
	}
	w := &Window{Kernel: kernel, Ceil: AttrInt(n, "ceil_mode", 0) != 0}
	var err error
	if w.Strides, err = spatialAttr(n, "strides", r, 1); err != nil {
		return nil, err
	}
	if w.Dilations, err = spatialAttr(n, "dilations", r, 1); err != nil {
		return nil, err
	}
	w.PadBegin, w.PadEnd = make([]int64, r), make([]int64, r)
	switch ap := AttrString(n, "auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		p, err := spatialAttr(n, "pads", 2*r, 0)
		if err != nil {
			return nil, err
		}
		copy(w.PadBegin, p[:r])
		copy(w.PadEnd, p[r:])
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		for i := range r {
			if sp[i] < 0 {
				return nil, fmt.Errorf("auto_pad %s needs static spatial dims", ap)
			}
			out := (sp[i] + w.Strides[i] - 1) / w.Strides[i]
			dk := w.Dilations[i]*(w.Kernel[i]-1) + 1
			total := max(0, (out-1)*w.Strides[i]+dk-sp[i])
			small, big := total/2, total-total/2
			if ap == "SAME_UPPER" {
				w.PadBegin[i], w.PadEnd[i] = small, big
			} else {
				w.PadBegin[i], w.PadEnd[i] = big, small
			}
		}
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", ap)
	}
	return w, nil
}

// ConvTransposeWindow is a ConvTranspose node resolved to explicit pads:
// Window's fields, the output_padding and the output spatial dims (-1 where
// the input's is unknown).
type ConvTransposeWindow struct {
	Window
	OutputPadding, Out []int64
}

// ResolveConvTranspose reads n's attributes for input spatial dims sp and
// the given kernel; output_shape and SAME auto_pad become explicit pads.
func ResolveConvTranspose(n *pb.NodeProto, sp, kernel []int64) (*ConvTransposeWindow, error) {
	r := len(sp)
	if len(kernel) != r {
		return nil, fmt.Errorf("kernel %v for %d spatial dims", kernel, r)
	}
	t := &ConvTransposeWindow{Window: Window{Kernel: kernel}}
	var err error
	if t.Strides, err = spatialAttr(n, "strides", r, 1); err != nil {
		return nil, err
	}
	if t.Dilations, err = spatialAttr(n, "dilations", r, 1); err != nil {
		return nil, err
	}
	if t.OutputPadding, err = spatialAttr(n, "output_padding", r, 0); err != nil {
		return nil, err
	}
	t.PadBegin, t.PadEnd = make([]int64, r), make([]int64, r)
	outShape := AttrInts(n, "output_shape", nil)
	if len(outShape) > r {
		outShape = outShape[len(outShape)-r:]
	}
	ap := AttrString(n, "auto_pad", "NOTSET")
	if p := AttrInts(n, "pads", nil); p != nil && outShape == nil && (ap == "NOTSET" || ap == "") {
		if len(p) != 2*r {
			return nil, fmt.Errorf("pads %v for %d spatial dims", p, r)
		}
		copy(t.PadBegin, p[:r])
		copy(t.PadEnd, p[r:])
	}
	t.Out = make([]int64, r)
	for i := range r {
		dk := t.Dilations[i]*(t.Kernel[i]-1) + 1
		if sp[i] < 0 {
			t.Out[i] = -1
			continue
		}
		full := t.Strides[i]*(sp[i]-1) + t.OutputPadding[i] + dk
		var want int64 = -1
		switch {
		case outShape != nil:
			want = outShape[i]
		case ap == "SAME_UPPER" || ap == "SAME_LOWER":
			want = sp[i] * t.Strides[i]
		}
		if want >= 0 {
			total := full - want
			if total < 0 {
				return nil, fmt.Errorf("output_shape %d larger than the full output %d", want, full)
			}
			if ap == "SAME_UPPER" {
				t.PadBegin[i], t.PadEnd[i] = total/2, total-total/2
			} else {
				t.PadBegin[i], t.PadEnd[i] = total-total/2, total/2
			}
		}
		t.Out[i] = full - t.PadBegin[i] - t.PadEnd[i]
	}
	return t, nil
}
