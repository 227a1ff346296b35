package ec2sim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzWorldInvariants applies an arbitrary sequence of IPv6 assignments
// and unassignments (by count, by explicit value, colliding or not) to the
// ENIs of a world, through the whole request path, and checks after each
// one that the world stays one AWS could hold: no IPv6 address or prefix
// held twice, none outside its ENI's subnet, no address inside a delegated
// prefix, prefixes /80-aligned, and the subnets' counts equal to what the
// ENIs hold.
func FuzzWorldInvariants(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 0, 0, 2, 0, 5, 3, 0, 5, 4, 0, 0})
	f.Add([]byte{1, 1, 0, 1, 1, 0, 3, 1, 7, 3, 2, 7, 2, 2, 9, 2, 0, 9})
	f.Add([]byte{2, 0, 0x10, 3, 0, 0x34, 4, 0, 1, 4, 0, 0, 0, 0, 2})
	sc, err := ParseScenario([]byte(testScenarioYAML))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		sim, err := Start(Options{Scenario: sc, VerifySignatures: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		var enis []ENIState
		for _, in := range sim.State().Instances {
			enis = append(enis, in.ENIs...)
		}
		for i := 0; i+2 < len(ops) && i < 3*64; i += 3 {
			kind, e, arg := ops[i]%5, enis[int(ops[i+1])%len(enis)], ops[i+2]
			subnet := subnetOf(t, sim, e.Subnet)
			form := url.Values{"Action": {"AssignIpv6Addresses"}, "Version": {"2016-11-15"}, "NetworkInterfaceId": {e.ID}}
			switch kind {
			case 0:
				form.Set("Ipv6AddressCount", fmt.Sprint(int(arg)%3+1))
			case 1:
				form.Set("Ipv6PrefixCount", "1")
			case 2: // an explicit address: arg picks its last byte
				if subnet.IsValid() {
					b := subnet.Addr().As16()
					b[15] = arg
					form.Set("Ipv6Addresses.1", netip.AddrFrom16(b).String())
				}
			case 3: // an explicit /80: arg picks its fifth group
				if subnet.IsValid() {
					b := subnet.Addr().As16()
					b[9] = arg
					form.Set("Ipv6Prefix.1", netip.PrefixFrom(netip.AddrFrom16(b), 80).String())
				}
			case 4: // give back something the ENI holds, picked by arg
				form.Set("Action", "UnassignIpv6Addresses")
				cur := eniOf(sim, e.ID)
				if n := len(cur.IPv6) + len(cur.IPv6Prefixes); n > 0 {
					if k := int(arg) % n; k < len(cur.IPv6) {
						form.Set("Ipv6Addresses.1", cur.IPv6[k].Address)
					} else {
						form.Set("Ipv6Prefix.1", cur.IPv6Prefixes[k-len(cur.IPv6)])
					}
				}
			}
			body := form.Encode()
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			signRequest(t, req, body)
			rec := httptest.NewRecorder()
			sim.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s: status %d: %s", body, rec.Code, rec.Body)
			}
			checkWorld(t, sim.State(), body)
		}
	})
}

func subnetOf(t *testing.T, sim *Sim, id string) netip.Prefix {
	for _, s := range sim.State().Subnets {
		if s.ID == id && s.IPv6CIDR != "" {
			return netip.MustParsePrefix(s.IPv6CIDR)
		}
	}
	return netip.Prefix{}
}

func eniOf(sim *Sim, id string) ENIState {
	for _, in := range sim.State().Instances {
		for _, e := range in.ENIs {
			if e.ID == id {
				return e
			}
		}
	}
	return ENIState{}
}

// checkWorld asserts the invariants of FuzzWorldInvariants on st.
func checkWorld(t *testing.T, st State, after string) {
	t.Helper()
	subnets := map[string]SubnetState{}
	for _, s := range st.Subnets {
		subnets[s.ID] = s
	}
	addrs, prefixes := map[netip.Addr]string{}, map[netip.Prefix]string{}
	held := map[string][2]int{} // subnet → addresses, prefixes
	for _, in := range st.Instances {
		for _, e := range in.ENIs {
			sn := subnets[e.Subnet]
			var cidr netip.Prefix
			if sn.IPv6CIDR != "" {
				cidr = netip.MustParsePrefix(sn.IPv6CIDR)
			}
			h := held[e.Subnet]
			for _, a := range e.IPv6 {
				ip := netip.MustParseAddr(a.Address)
				if other, dup := addrs[ip]; dup {
					t.Fatalf("after %s: %s held by %s and %s", after, ip, other, e.ID)
				}
				addrs[ip] = e.ID
				if !cidr.Contains(ip) {
					t.Fatalf("after %s: %s on %s outside subnet %s", after, ip, e.ID, sn.IPv6CIDR)
				}
				h[0]++
			}
			for _, s := range e.IPv6Prefixes {
				p := netip.MustParsePrefix(s)
				if other, dup := prefixes[p]; dup {
					t.Fatalf("after %s: %s held by %s and %s", after, p, other, e.ID)
				}
				prefixes[p] = e.ID
				if p.Bits() != 80 || p.Masked() != p || !cidr.Contains(p.Addr()) {
					t.Fatalf("after %s: prefix %s on %s not a /80 of %s", after, p, e.ID, sn.IPv6CIDR)
				}
				h[1]++
			}
			held[e.Subnet] = h
		}
	}
	for ip, owner := range addrs {
		for p, pOwner := range prefixes {
			if p.Contains(ip) {
				t.Fatalf("after %s: address %s (%s) inside prefix %s (%s)", after, ip, owner, p, pOwner)
			}
		}
	}
	for id, s := range subnets {
		if h := held[id]; s.IPv6Addresses != h[0] || s.IPv6Prefixes != h[1] {
			t.Fatalf("after %s: subnet %s counts %d addresses, %d prefixes; ENIs hold %d, %d", after, id, s.IPv6Addresses, s.IPv6Prefixes, h[0], h[1])
		}
	}
}
