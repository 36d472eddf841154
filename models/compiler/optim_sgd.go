package compiler

// sgdUpdate emits p.next (and p.mom.next when mom is set) from gradient
// grad with torch.optim.SGD's semantics (dampening 0):
//
//	g = grad + wd·p;  buf = μ·buf + g;  p -= lr·(Nesterov ? g + μ·buf : buf)
//
// A parameter no gradient reaches is left unchanged, as torch.optim.SGD
// skips parameters whose grad is None.
func sgdUpdate(e *emitter, o Options, t Tensor, mom, grad string) {
	if grad == "" {
		e.b.NodeNamed("Identity", []string{t.Name}, []string{t.Next})
		if mom != "" {
			e.b.NodeNamed("Identity", []string{mom}, []string{mom + ".next"})
		}
		return
	}
	g, r := grad, len(t.Dims)
	if wd := o.decayOf(t); wd != 0 {
		g = e.add(g, e.scaleR(t.Name, wd, r))
	}
	upd := g
	if mom != "" {
		buf := mom + ".next"
		e.b.NodeNamed("Add", []string{e.scaleR(mom, o.Momentum, r), g}, []string{buf})
		upd = buf
		if o.Nesterov {
			upd = e.add(g, e.scaleR(buf, o.Momentum, r))
		}
	}
	e.b.NodeNamed("Sub", []string{t.Name, e.mul(upd, e.lrOf(o, t))}, []string{t.Next})
}
