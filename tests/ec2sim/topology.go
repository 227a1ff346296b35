package ec2sim

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"time"
)

// topologyFamilies are the instance families AWS documents as supported by
// DescribeInstanceTopology ("Prerequisites for Amazon EC2 topology",
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-topology-prerequisites.html);
// instances of other types are simply not listed.
var topologyFamilies = []string{
	"g6e", "g7e",
	"hpc6a", "hpc6id", "hpc7a", "hpc7g", "hpc8a",
	"p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6e-gb200", "p6-b200", "p6-b300",
	"trn1", "trn1n", "trn2", "trn2u",
}

// fourLayerFamilies are the families AWS documents with four network nodes
// in the answer; the others have three.
var fourLayerFamilies = []string{"p6-b200", "p6-b300"}

var typeFamilyRe = regexp.MustCompile(`^([a-z0-9-]+)\.`)

func topologySupported(typ string) bool {
	m := typeFamilyRe.FindStringSubmatch(typ)
	return m != nil && slices.Contains(topologyFamilies, m[1])
}

// networkNodes returns an instance's network node IDs, top layer first:
// stable per instance, shared by 64 (layer 1) and 8 (layer 2) instances of
// a zone in launch order, and by none at layer 3 beyond pairs; a fourth
// layer, the instance's own, for the families AWS lists with four.
func (w *world) networkNodes(inst *instance) []string {
	id := func(layer, group int) string {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s/%s/%d/%d", w.account, inst.subnet.zone.id, layer, group)
		return fmt.Sprintf("nn-%017x", h.Sum64())
	}
	out := []string{id(1, inst.seq/64), id(2, inst.seq/8), id(3, inst.seq/2)}
	if m := typeFamilyRe.FindStringSubmatch(inst.typ); m != nil && slices.Contains(fourLayerFamilies, m[1]) {
		out = append(out, id(4, inst.seq))
	}
	return out
}

var topologyFilters = map[string]fieldFunc[*instance]{
	"availability-zone": func(_ *world, i *instance, _ time.Time) []string { return []string{i.subnet.zone.name} },
	"zone-id":           func(_ *world, i *instance, _ time.Time) []string { return []string{i.subnet.zone.id} },
	"instance-type":     func(_ *world, i *instance, _ time.Time) []string { return []string{i.typ} },
}

// describeInstanceTopology lists running instances of supported types:
// at most 100 InstanceId.N, MaxResults 1-100 (default 20) only without IDs.
// Unknown IDs are left out of the answer; malformed ones are refused.
func describeInstanceTopology(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"InstanceId.#", "GroupName.#", "Filter.#.Name", "Filter.#.Value.#", "MaxResults", "NextToken"}); err != nil {
		return err
	}
	ids, aerr := instanceIDs(p, 100, "The maximum number of instance IDs (100) was exceeded: %d")
	if aerr != nil {
		return aerr
	}
	fs, err := p.filters()
	if err != nil {
		return err
	}
	match, err := compileFilters(fs, topologyFilters, nil)
	if err != nil {
		return err
	}
	pg, err := parsePaging(p, "DescribeInstanceTopology", 1, 100, len(ids) > 0, "instanceIds")
	if err != nil {
		return err
	}
	if pg.max == 0 && len(ids) == 0 {
		pg.max = 20
	}
	groups := p.list("GroupName")
	out, next := page(w.instances, func(i *instance) int { return i.seq }, func(i *instance) bool {
		return (len(ids) == 0 || slices.Contains(ids, i.id)) && len(groups) == 0 &&
			topologySupported(i.typ) && i.stateAt(rc.at) == "running" && match(w, i, rc.at)
	}, pg)
	x := rc.x
	x.open("instanceSet")
	for _, i := range out {
		x.open("item")
		x.el("instanceId", i.id)
		x.el("instanceType", i.typ)
		x.open("networkNodeSet")
		for _, nn := range w.networkNodes(i) {
			x.el("item", nn)
		}
		x.close("networkNodeSet")
		x.el("availabilityZone", i.subnet.zone.name)
		x.el("zoneId", i.subnet.zone.id)
		x.close("item")
	}
	x.close("instanceSet")
	if next != "" {
		x.el("nextToken", next)
	}
	return nil
}
