package ec2sim

import (
	"net/netip"
	"slices"
	"time"
)

// Versions of instance states and ENI addresses let describes under an
// injected consistency lag see the world as it was.

// eniVer is the IPv6 state of an ENI from time at on; describes under a
// consistency lag read old versions.
type eniVer struct {
	at       time.Time
	v6       []v6addr
	prefixes []netip.Prefix
}

type stateVer struct {
	at    time.Time
	state string
}

func (w *world) setState(inst *instance, state string, now time.Time) {
	inst.states = append(inst.states, stateVer{at: now, state: state})
	inst.states = pruneVersions(inst.states, now, func(v stateVer) time.Time { return v.at })
	inst.xml = nil
}

// maxLag bounds how long old versions are kept for lagged describes.
const maxLag = 5 * time.Minute

func pruneVersions[T any](vs []T, now time.Time, at func(T) time.Time) []T {
	for len(vs) > 1 && at(vs[1]).Before(now.Add(-maxLag)) {
		vs = vs[1:]
	}
	return vs
}

func (inst *instance) state() string { return inst.states[len(inst.states)-1].state }

// stateAt is the state a describe lagging to time at sees; "" = not visible yet.
func (inst *instance) stateAt(at time.Time) string {
	if at.IsZero() {
		return inst.state()
	}
	if at.Before(inst.created) {
		return ""
	}
	for i := len(inst.states) - 1; i >= 0; i-- {
		if !inst.states[i].at.After(at) {
			return inst.states[i].state
		}
	}
	return inst.states[0].state
}

// view is the IPv6 state of an ENI as a describe lagging to time at sees it.
func (e *eni) view(at time.Time) ([]v6addr, []netip.Prefix) {
	if at.IsZero() {
		return e.v6, e.prefixes
	}
	for i := len(e.hist) - 1; i >= 0; i-- {
		if !e.hist[i].at.After(at) {
			return e.hist[i].v6, e.hist[i].prefixes
		}
	}
	return e.hist[0].v6, e.hist[0].prefixes
}

// record saves the ENI's current IPv6 state as a new version.
func (e *eni) record(now time.Time) {
	e.hist = append(e.hist, eniVer{at: now, v6: slices.Clone(e.v6), prefixes: slices.Clone(e.prefixes)})
	e.hist = pruneVersions(e.hist, now, func(v eniVer) time.Time { return v.at })
	e.inst.xml = nil
}
