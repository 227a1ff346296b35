package ec2sim

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reqCtx is what an action handler gets besides its parameters.
type reqCtx struct {
	x   xw
	now time.Time
	// at is the moment a lagging describe sees; zero = now.
	at time.Time
}

// fieldFunc extracts the values a filter compares against.
type fieldFunc[T any] func(w *world, v T, at time.Time) []string

// compileFilters checks filter names and returns one predicate.
func compileFilters[T any](fs []filter, known map[string]fieldFunc[T], tags func(T) map[string]string) (func(*world, T, time.Time) bool, *apiError) {
	type cf struct {
		f  filter
		fn fieldFunc[T]
	}
	var cfs []cf
	for _, f := range fs {
		fn, ok := known[f.name]
		switch {
		case ok:
		case tags != nil && strings.HasPrefix(f.name, "tag:") && len(f.name) > 4:
			key := f.name[4:]
			fn = func(_ *world, v T, _ time.Time) []string {
				if val, ok := tags(v)[key]; ok {
					return []string{val}
				}
				return nil
			}
		case tags != nil && f.name == "tag-key":
			fn = func(_ *world, v T, _ time.Time) []string { return mapKeys(tags(v)) }
		case tags != nil && f.name == "tag-value":
			fn = func(_ *world, v T, _ time.Time) []string { return mapValues(tags(v)) }
		default:
			return nil, badValue("The filter '%s' is invalid", f.name)
		}
		cfs = append(cfs, cf{f, fn})
	}
	return func(w *world, v T, at time.Time) bool {
		for _, c := range cfs {
			if !matchAny(c.f, c.fn(w, v, at)...) {
				return false
			}
		}
		return true
	}, nil
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// paging holds MaxResults/NextToken of one describe request.
type paging struct {
	max   int // 0 = no limit
	after int // resume after this sequence number
	fp    string
	used  bool
}

// parsePaging validates MaxResults (lo..hi) and NextToken. The token names
// the request's other parameters, so a token from another query is rejected.
func parsePaging(p *params, action string, lo, hi int, idsGiven bool, idsName string) (paging, *apiError) {
	pg := paging{fp: fingerprint(p, action)}
	n, ok, err := p.intParam("MaxResults")
	if err != nil {
		return pg, err
	}
	if ok {
		if idsGiven {
			return pg, badCombination("The parameter %s cannot be used with the parameter maxResults", idsName)
		}
		if n < lo || n > hi {
			return pg, badValue("Value ( %d ) for parameter maxResults is invalid. Expecting a value between %d and %d.", n, lo, hi)
		}
		pg.max, pg.used = n, true
	}
	if tok, ok := p.v["NextToken"]; ok {
		pg.used = true
		after, ok := decodeToken(tok[0], pg.fp)
		if !ok {
			return pg, errf(http.StatusBadRequest, "InvalidNextToken", "The token '%s' is invalid.", tok[0])
		}
		pg.after = after
	}
	return pg, nil
}

func fingerprint(p *params, action string) string {
	keys := make([]string, 0, len(p.v))
	for k := range p.v {
		if k != "NextToken" && k != "MaxResults" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := fnv.New64a()
	h.Write([]byte(action))
	for _, k := range keys {
		fmt.Fprintf(h, "\x00%s=%s", k, p.v[k][0])
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

func encodeToken(seq int, fp string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1." + strconv.Itoa(seq) + "." + fp))
}

func decodeToken(tok, fp string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != "v1" || parts[2] != fp {
		return 0, false
	}
	n, err := strconv.Atoi(parts[1])
	return n, err == nil && n > 0
}

// page walks candidates in sequence order, returning the matches of this
// page and the token for the next one ("" at the end).
func page[T any](items []T, seq func(T) int, match func(T) bool, pg paging) ([]T, string) {
	var out []T
	for _, it := range items {
		if seq(it) <= pg.after || !match(it) {
			continue
		}
		if pg.max > 0 && len(out) == pg.max {
			return out, encodeToken(seq(out[len(out)-1]), pg.fp)
		}
		out = append(out, it)
	}
	return out, ""
}

// notFound builds EC2's "The instance ID 'a' does not exist" message.
func notFound(code, noun string, ids []string) *apiError {
	if len(ids) == 1 {
		return errf(http.StatusBadRequest, code, "The %s ID '%s' does not exist", noun, ids[0])
	}
	return errf(http.StatusBadRequest, code, "The %s IDs '%s' do not exist", noun, strings.Join(ids, ", "))
}

var instanceFilters = map[string]fieldFunc[*instance]{
	"instance-id": func(_ *world, i *instance, _ time.Time) []string { return []string{i.id} },
	"private-dns-name": func(_ *world, i *instance, at time.Time) []string {
		if i.stateAt(at) == "terminated" {
			return nil
		}
		return []string{i.dns}
	},
	"instance-state-name": func(_ *world, i *instance, at time.Time) []string { return []string{i.stateAt(at)} },
	"instance-state-code": func(_ *world, i *instance, at time.Time) []string {
		return []string{strconv.Itoa(stateCodes[i.stateAt(at)])}
	},
	"instance-type":     func(_ *world, i *instance, _ time.Time) []string { return []string{i.typ} },
	"availability-zone": func(_ *world, i *instance, _ time.Time) []string { return []string{i.subnet.zone.name} },
	"vpc-id": func(_ *world, i *instance, at time.Time) []string {
		if i.stateAt(at) == "terminated" {
			return nil
		}
		return []string{i.subnet.vpc.id}
	},
	"subnet-id": func(_ *world, i *instance, at time.Time) []string {
		if i.stateAt(at) == "terminated" {
			return nil
		}
		return []string{i.subnet.id}
	},
	"private-ip-address": func(_ *world, i *instance, at time.Time) []string {
		if i.stateAt(at) == "terminated" || !i.privateIP.IsValid() {
			return nil
		}
		return []string{i.privateIP.String()}
	},
	"network-interface.network-interface-id": func(_ *world, i *instance, at time.Time) []string {
		if i.stateAt(at) == "terminated" {
			return nil
		}
		out := make([]string, len(i.enis))
		for k, e := range i.enis {
			out[k] = e.id
		}
		return out
	},
}

// instanceIDs reads InstanceId.N: at most max IDs (else tooMany, given the
// count), each well formed.
func instanceIDs(p *params, max int, tooMany string) ([]string, *apiError) {
	ids := p.list("InstanceId")
	if len(ids) > max {
		return nil, badValue(tooMany, len(ids))
	}
	for _, id := range ids {
		if !instanceIDRe.MatchString(id) {
			return nil, errf(http.StatusBadRequest, "InvalidInstanceID.Malformed", "Invalid id: %q", id)
		}
	}
	return ids, nil
}

func describeInstances(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"InstanceId.#", "Filter.#.Name", "Filter.#.Value.#", "MaxResults", "NextToken", "IncludeManagedResources"}); err != nil {
		return err
	}
	ids, aerr := instanceIDs(p, 1000, "The maximum number of instance IDs is 1000; %d were given")
	if aerr != nil {
		return aerr
	}
	fs, err := p.filters()
	if err != nil {
		return err
	}
	match, err := compileFilters(fs, instanceFilters, func(i *instance) map[string]string { return i.tags })
	if err != nil {
		return err
	}
	pg, err := parsePaging(p, "DescribeInstances", 5, 1000, len(ids) > 0, "instancesSet")
	if err != nil {
		return err
	}
	cands := w.instances
	if len(ids) > 0 {
		cands = nil
		var missingIDs []string
		seen := map[string]bool{}
		for _, id := range ids {
			inst := w.instByID[id]
			if inst == nil || inst.stateAt(rc.at) == "" {
				if !slices.Contains(missingIDs, id) {
					missingIDs = append(missingIDs, id)
				}
				continue
			}
			if !seen[id] {
				seen[id] = true
				cands = append(cands, inst)
			}
		}
		if len(missingIDs) > 0 {
			return notFound("InvalidInstanceID.NotFound", "instance", missingIDs)
		}
		slices.SortFunc(cands, func(a, b *instance) int { return a.seq - b.seq })
	} else if idx := w.indexCandidates(fs); idx != nil {
		cands = idx
	}
	out, next := page(cands, func(i *instance) int { return i.seq }, func(i *instance) bool {
		return i.stateAt(rc.at) != "" && match(w, i, rc.at)
	}, pg)
	x := rc.x
	if len(out) == 0 {
		x.WriteString("<reservationSet/>")
	} else {
		x.open("reservationSet")
		for _, inst := range out {
			x.Write(w.reservationXML(inst, rc.at))
		}
		x.close("reservationSet")
	}
	if next != "" {
		x.el("nextToken", next)
	}
	return nil
}

// indexCandidates narrows a describe to the instances an exact instance-id
// or private-dns-name filter names, or returns nil to scan everything.
func (w *world) indexCandidates(fs []filter) []*instance {
	for _, f := range fs {
		if f.name != "instance-id" && f.name != "private-dns-name" {
			continue
		}
		if slices.ContainsFunc(f.values, func(v string) bool { return strings.ContainsAny(v, `*?\`) }) {
			continue
		}
		var out []*instance
		for _, v := range f.values {
			if f.name == "instance-id" {
				if i := w.instByID[v]; i != nil {
					out = append(out, i)
				}
			} else {
				out = append(out, w.instByDNS[v]...)
			}
		}
		slices.SortFunc(out, func(a, b *instance) int { return a.seq - b.seq })
		return slices.CompactFunc(out, func(a, b *instance) bool { return a == b })
	}
	return nil
}

// reservationXML returns the reservationSet item of one instance, cached
// while the instance is unchanged and no lag applies.
func (w *world) reservationXML(inst *instance, at time.Time) []byte {
	if at.IsZero() && inst.xml != nil {
		return inst.xml
	}
	var b bytes.Buffer
	x := xw{&b}
	x.open("item")
	x.el("reservationId", "r-"+inst.id[2:])
	x.el("ownerId", w.account)
	x.WriteString("<groupSet/>")
	x.open("instancesSet")
	w.renderInstance(x, inst, at)
	x.close("instancesSet")
	x.close("item")
	if at.IsZero() {
		inst.xml = b.Bytes()
	}
	return b.Bytes()
}
