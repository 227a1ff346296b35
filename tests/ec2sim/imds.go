package ec2sim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// IMDS headers.
const (
	imdsTTLHeader   = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	imdsTokenHeader = "X-Aws-Ec2-Metadata-Token"
)

func (s *Sim) serveIMDS(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Server", "EC2ws")
	if r.URL.Path == "/latest/api/token" {
		s.imdsToken(rw, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(rw, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if !s.validToken(r.Header.Get(imdsTokenHeader)) {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	tree := s.w.imdsTree()
	s.mu.Unlock()
	if tree != nil && s.role != "" {
		s.addRoleTree(tree, time.Now())
	}
	if tree == nil {
		http.Error(rw, "Not Found", http.StatusNotFound)
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, "/latest/")
	body, ok := tree[rel]
	if !ok {
		body, ok = listing(tree, strings.TrimSuffix(rel, "/"))
	}
	if !ok {
		http.Error(rw, "Not Found", http.StatusNotFound)
		return
	}
	if strings.HasSuffix(rel, "/document") {
		rw.Header().Set("Content-Type", "application/json")
	} else {
		rw.Header().Set("Content-Type", "text/plain")
	}
	rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = rw.Write([]byte(body))
	}
}

// imdsToken answers PUT /latest/api/token.
func (s *Sim) imdsToken(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(rw, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(rw, "Forbidden", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(imdsTTLHeader))
	if err != nil || ttl < 1 || ttl > 21600 {
		http.Error(rw, "Bad Request", http.StatusBadRequest)
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	s.cmu.Lock()
	now := time.Now()
	for t, exp := range s.tokens {
		if now.After(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	s.cmu.Unlock()
	rw.Header().Set(imdsTTLHeader, strconv.Itoa(ttl))
	rw.Header().Set("Content-Type", "text/plain")
	_, _ = rw.Write([]byte(tok))
}

func (s *Sim) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// listing renders a directory of the tree: one child per line, directories
// with a trailing slash.
func listing(tree map[string]string, dir string) (string, bool) {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	for p := range tree {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || rest == "" {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seen[rest[:i+1]] = true
		} else {
			seen[rest] = true
		}
	}
	if len(seen) == 0 {
		return "", false
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, "\n"), true
}

// imdsTree holds every leaf under /latest/ for the chosen instance.
func (w *world) imdsTree() map[string]string {
	inst := w.instByID[w.imdsInstance]
	if inst == nil {
		return nil
	}
	md := "meta-data/"
	t := map[string]string{
		md + "ami-id":                          "ami-0abcdef1234567890",
		md + "ami-launch-index":                "0",
		md + "instance-id":                     inst.id,
		md + "instance-type":                   inst.typ,
		md + "hostname":                        inst.dns,
		md + "local-hostname":                  inst.dns,
		md + "placement/availability-zone":     inst.subnet.zone.name,
		md + "placement/availability-zone-id":  inst.subnet.zone.id,
		md + "placement/region":                w.region,
		md + "services/domain":                 "amazonaws.com",
		md + "services/partition":              "aws",
		md + "metadata/instance-metadata-tags": "disabled",
	}
	if inst.privateIP.IsValid() {
		t[md+"local-ipv4"] = inst.privateIP.String()
	}
	if inst.publicIP != "" {
		t[md+"public-ipv4"] = inst.publicIP
	}
	if p := inst.primaryENI(); p != nil {
		t[md+"security-groups"] = strings.Join(groupNames(p.attrs.groups), "\n")
	}
	if p := inst.primaryENI(); p != nil && !p.released {
		t[md+"mac"] = p.mac
		if len(p.v6) > 0 {
			first := p.v6[0].addr
			for _, a := range p.v6 {
				if a.primary {
					first = a.addr
					break
				}
			}
			t[md+"ipv6"] = first.String()
		}
	}
	for _, e := range inst.enis {
		if e.released {
			continue
		}
		m := md + "network/interfaces/macs/" + e.mac + "/"
		t[m+"device-number"] = strconv.Itoa(e.device)
		t[m+"network-card"] = strconv.Itoa(e.card)
		t[m+"interface-id"] = e.id
		if len(e.v4) > 0 {
			t[m+"local-hostname"] = w.dnsName(e.v4[0])
			t[m+"local-ipv4s"] = strings.Join(addrStrings(e.v4), "\n")
		}
		t[m+"mac"] = e.mac
		t[m+"owner-id"] = w.account
		t[m+"security-group-ids"] = strings.Join(groupIDs(e.attrs.groups), "\n")
		t[m+"security-groups"] = strings.Join(groupNames(e.attrs.groups), "\n")
		t[m+"subnet-id"] = e.subnet.id
		if e.subnet.cidr.IsValid() {
			t[m+"subnet-ipv4-cidr-block"] = e.subnet.cidr.String()
		}
		t[m+"vpc-id"] = e.subnet.vpc.id
		t[m+"vpc-ipv4-cidr-block"] = e.subnet.vpc.cidr.String()
		t[m+"vpc-ipv4-cidr-blocks"] = e.subnet.vpc.cidr.String()
		if e.subnet.v6.IsValid() {
			t[m+"subnet-ipv6-cidr-blocks"] = e.subnet.v6.String()
		}
		if e.subnet.vpc.v6.IsValid() {
			t[m+"vpc-ipv6-cidr-blocks"] = e.subnet.vpc.v6.String()
		}
		if len(e.v6) > 0 {
			var as []string
			for _, a := range e.v6 {
				as = append(as, a.addr.String())
			}
			t[m+"ipv6s"] = strings.Join(as, "\n")
		}
		if len(e.prefixes) > 0 {
			var ps []string
			for _, p := range e.prefixes {
				ps = append(ps, p.String())
			}
			t[m+"ipv6-prefix"] = strings.Join(ps, "\n")
		}
	}
	var privateIP any // null without IPv4
	if inst.privateIP.IsValid() {
		privateIP = inst.privateIP.String()
	}
	doc, _ := json.MarshalIndent(map[string]any{
		"accountId":               w.account,
		"architecture":            "x86_64",
		"availabilityZone":        inst.subnet.zone.name,
		"billingProducts":         nil,
		"devpayProductCodes":      nil,
		"marketplaceProductCodes": nil,
		"imageId":                 "ami-0abcdef1234567890",
		"instanceId":              inst.id,
		"instanceType":            inst.typ,
		"kernelId":                nil,
		"pendingTime":             inst.launch.UTC().Format(time.RFC3339),
		"privateIp":               privateIP,
		"ramdiskId":               nil,
		"region":                  w.region,
		"version":                 "2017-09-30",
	}, "", "  ")
	t["dynamic/instance-identity/document"] = string(doc)
	return t
}
