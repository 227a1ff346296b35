package ec2sim

import (
	"bytes"
	"encoding/xml"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// xw writes EC2 response XML.
type xw struct{ *bytes.Buffer }

func (x xw) open(name string)  { x.WriteString("<" + name + ">") }
func (x xw) close(name string) { x.WriteString("</" + name + ">") }

func (x xw) el(name, val string) {
	x.open(name)
	_ = xml.EscapeText(x.Buffer, []byte(val))
	x.close(name)
}

func (x xw) elInt(name string, v int)   { x.el(name, strconv.Itoa(v)) }
func (x xw) elBool(name string, v bool) { x.el(name, strconv.FormatBool(v)) }
func (x xw) elTime(name string, t time.Time) {
	x.el(name, t.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// items writes <set><item><field>v</field></item>...</set>, or <set/> if empty.
func (x xw) items(set, field string, vals []string) {
	if len(vals) == 0 {
		x.WriteString("<" + set + "/>")
		return
	}
	x.open(set)
	for _, v := range vals {
		x.open("item")
		if field == "" {
			_ = xml.EscapeText(x.Buffer, []byte(v))
		} else {
			x.el(field, v)
		}
		x.close("item")
	}
	x.close(set)
}

func (x xw) tagSet(tags map[string]string) {
	if len(tags) == 0 {
		x.WriteString("<tagSet/>")
		return
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	x.open("tagSet")
	for _, k := range keys {
		x.open("item")
		x.el("key", k)
		x.el("value", tags[k])
		x.close("item")
	}
	x.close("tagSet")
}

func (x xw) v6Set(addrs []v6addr, primaryFlag bool) {
	if len(addrs) == 0 {
		x.WriteString("<ipv6AddressesSet/>")
		return
	}
	x.open("ipv6AddressesSet")
	for _, a := range addrs {
		x.open("item")
		x.el("ipv6Address", a.addr.String())
		if primaryFlag {
			x.elBool("isPrimaryIpv6", a.primary)
		}
		x.close("item")
	}
	x.close("ipv6AddressesSet")
}

func (x xw) prefixSet(set string, ps []netip.Prefix) {
	vals := make([]string, len(ps))
	for i, p := range ps {
		vals[i] = p.String()
	}
	x.items(set, "ipv6Prefix", vals)
}

// privateIPs writes privateIpAddressesSet; an ENI without IPv4 (IPv6-only
// subnet) has none, and the element is left out.
func (x xw) privateIPs(w *world, e *eni) {
	if len(e.v4) == 0 {
		return
	}
	x.open("privateIpAddressesSet")
	for i, a := range e.v4 {
		x.open("item")
		x.el("privateIpAddress", a.String())
		x.el("privateDnsName", w.dnsName(a))
		x.elBool("primary", i == 0)
		x.close("item")
	}
	x.close("privateIpAddressesSet")
}

// eniIPv4 writes an ENI's primary privateIpAddress and its IP-based
// privateDnsName, both absent when the ENI has no IPv4 address.
func (x xw) eniIPv4(w *world, e *eni) {
	if len(e.v4) == 0 {
		return
	}
	x.el("privateIpAddress", e.v4[0].String())
	x.el("privateDnsName", w.dnsName(e.v4[0]))
}

func (x xw) dnsOptions(name string, o PrivateDNSNameOptions) {
	x.open(name)
	x.el("hostnameType", o.HostnameType)
	x.elBool("enableResourceNameDnsARecord", o.EnableResourceNameDNSARecord)
	x.elBool("enableResourceNameDnsAAAARecord", o.EnableResourceNameDNSAAAARecord)
	x.close(name)
}

// groupSet writes an ENI's (or instance's) security groups.
func (x xw) groupSet(gs []*secGroup) {
	if len(gs) == 0 {
		x.WriteString("<groupSet/>")
		return
	}
	x.open("groupSet")
	for _, g := range gs {
		x.open("item")
		x.el("groupId", g.id)
		x.el("groupName", g.name)
		x.close("item")
	}
	x.close("groupSet")
}

// primaryENI is device 0 on card 0, else the lowest (card, device).
func (inst *instance) primaryENI() *eni {
	var best *eni
	for _, e := range inst.enis {
		if best == nil || e.card < best.card || (e.card == best.card && e.device < best.device) {
			best = e
		}
	}
	return best
}

// publicDNSName is an instance's public DNS hostname, as AWS documents it:
// only while running with a public IPv4 address in a VPC with DNS hostnames
// on; ec2-<address with dashes>.compute-1.amazonaws.com in us-east-1,
// ec2-<address with dashes>.<region>.compute.amazonaws.com elsewhere.
func (w *world) publicDNSName(inst *instance, state string) string {
	if inst.publicIP == "" || state != "running" || !inst.subnet.vpc.dnsHostnames {
		return ""
	}
	host := "ec2-" + strings.ReplaceAll(inst.publicIP, ".", "-")
	if w.region == "us-east-1" {
		return host + ".compute-1.amazonaws.com"
	}
	return host + "." + w.region + ".compute.amazonaws.com"
}

// renderInstance writes one instancesSet item as seen at time at.
func (w *world) renderInstance(x xw, inst *instance, at time.Time) {
	state := inst.stateAt(at)
	gone := state == "terminated"
	x.open("item")
	x.el("instanceId", inst.id)
	x.el("imageId", "ami-0abcdef1234567890")
	x.open("instanceState")
	x.elInt("code", stateCodes[state])
	x.el("name", state)
	x.close("instanceState")
	if gone {
		x.WriteString("<privateDnsName/><dnsName/>")
	} else {
		x.el("privateDnsName", inst.dns)
		x.el("dnsName", w.publicDNSName(inst, state))
	}
	x.el("reason", "")
	x.elInt("amiLaunchIndex", 0)
	x.WriteString("<productCodes/>")
	x.el("instanceType", inst.typ)
	x.elTime("launchTime", inst.launch)
	x.open("placement")
	x.el("availabilityZone", inst.subnet.zone.name)
	x.el("availabilityZoneId", inst.subnet.zone.id)
	x.WriteString("<groupName/>")
	x.el("tenancy", "default")
	x.close("placement")
	x.open("monitoring")
	x.el("state", "disabled")
	x.close("monitoring")
	if !gone {
		x.el("subnetId", inst.subnet.id)
		x.el("vpcId", inst.subnet.vpc.id)
		if inst.privateIP.IsValid() {
			x.el("privateIpAddress", inst.privateIP.String())
		}
		if inst.publicIP != "" && state == "running" {
			x.el("ipAddress", inst.publicIP)
		}
		if p := inst.primaryENI(); p != nil {
			v6, _ := p.view(at)
			for _, a := range v6 {
				if a.primary {
					x.el("ipv6Address", a.addr.String())
					break
				}
			}
		}
	}
	p := inst.primaryENI()
	x.elBool("sourceDestCheck", !p.attrs.srcDstOff)
	x.groupSet(p.attrs.groups)
	x.el("architecture", "x86_64")
	x.el("rootDeviceType", "ebs")
	x.el("rootDeviceName", "/dev/xvda")
	x.el("virtualizationType", "hvm")
	x.el("hypervisor", "xen")
	x.dnsOptions("privateDnsNameOptions", inst.dnsOpt)
	x.tagSet(inst.tags)
	if gone {
		x.WriteString("<networkInterfaceSet/>")
	} else {
		x.open("networkInterfaceSet")
		for _, e := range inst.enis {
			w.renderInstanceENI(x, e, at)
		}
		x.close("networkInterfaceSet")
	}
	x.elBool("ebsOptimized", false)
	x.elBool("enaSupport", true)
	x.el("bootMode", "uefi-preferred")
	x.el("platformDetails", "Linux/UNIX")
	x.close("item")
}

func (w *world) renderInstanceENI(x xw, e *eni, at time.Time) {
	v6, prefixes := e.view(at)
	x.open("item")
	x.el("networkInterfaceId", e.id)
	x.el("subnetId", e.subnet.id)
	x.el("vpcId", e.subnet.vpc.id)
	x.el("description", e.attrs.desc)
	x.el("ownerId", w.account)
	x.el("status", "in-use")
	x.el("macAddress", e.mac)
	x.eniIPv4(w, e)
	x.elBool("sourceDestCheck", !e.attrs.srcDstOff)
	x.groupSet(e.attrs.groups)
	x.open("attachment")
	x.el("attachmentId", e.attachID)
	x.elInt("deviceIndex", e.device)
	x.elInt("networkCardIndex", e.card)
	x.el("status", "attached")
	x.elTime("attachTime", e.inst.launch)
	x.elBool("deleteOnTermination", e.device == 0)
	x.close("attachment")
	x.privateIPs(w, e)
	x.v6Set(v6, true)
	x.prefixSet("ipv6PrefixSet", prefixes)
	x.el("interfaceType", "interface")
	x.close("item")
}

// renderENI writes one DescribeNetworkInterfaces item.
func (w *world) renderENI(x xw, e *eni, at time.Time) {
	v6, prefixes := e.view(at)
	x.open("item")
	x.el("networkInterfaceId", e.id)
	x.el("subnetId", e.subnet.id)
	x.el("vpcId", e.subnet.vpc.id)
	x.el("availabilityZone", e.subnet.zone.name)
	x.el("availabilityZoneId", e.subnet.zone.id)
	x.el("description", e.attrs.desc)
	x.el("ownerId", w.account)
	x.elBool("requesterManaged", false)
	x.el("status", "in-use")
	x.el("macAddress", e.mac)
	x.eniIPv4(w, e)
	x.elBool("sourceDestCheck", !e.attrs.srcDstOff)
	x.el("interfaceType", "interface")
	x.groupSet(e.attrs.groups)
	x.open("attachment")
	x.el("attachmentId", e.attachID)
	x.el("instanceId", e.inst.id)
	x.el("instanceOwnerId", w.account)
	x.elInt("deviceIndex", e.device)
	x.elInt("networkCardIndex", e.card)
	x.el("status", "attached")
	x.elTime("attachTime", e.inst.launch)
	x.elBool("deleteOnTermination", e.device == 0)
	x.close("attachment")
	x.WriteString("<tagSet/>")
	x.privateIPs(w, e)
	x.v6Set(v6, true)
	x.prefixSet("ipv6PrefixSet", prefixes)
	x.elBool("ipv6Native", e.subnet.native)
	for _, a := range v6 {
		if a.primary {
			x.el("ipv6Address", a.addr.String())
			break
		}
	}
	x.close("item")
}

func (w *world) renderSubnet(x xw, s *subnet) {
	x.open("item")
	x.el("subnetId", s.id)
	x.el("subnetArn", "arn:aws:ec2:"+w.region+":"+w.account+":subnet/"+s.id)
	x.el("state", "available")
	x.el("ownerId", w.account)
	x.el("vpcId", s.vpc.id)
	if !s.native {
		x.el("cidrBlock", s.cidr.String())
		x.elInt("availableIpAddressCount", (1<<(32-s.cidr.Bits()))-5-len(s.usedV4))
	}
	x.el("availabilityZone", s.zone.name)
	x.el("availabilityZoneId", s.zone.id)
	x.elBool("defaultForAz", false)
	x.elBool("mapPublicIpOnLaunch", s.mapPublic)
	x.elBool("assignIpv6AddressOnCreation", s.v6.IsValid())
	x.elBool("ipv6Native", s.native)
	x.dnsOptions("privateDnsNameOptionsOnLaunch", s.dnsOpt)
	if s.v6.IsValid() {
		x.open("ipv6CidrBlockAssociationSet")
		x.open("item")
		x.el("ipv6CidrBlock", s.v6.String())
		x.el("associationId", s.assoc)
		x.open("ipv6CidrBlockState")
		x.el("state", "associated")
		x.close("ipv6CidrBlockState")
		x.el("ipSource", "amazon")
		x.el("ipv6AddressAttribute", "public")
		x.close("item")
		x.close("ipv6CidrBlockAssociationSet")
	} else {
		x.WriteString("<ipv6CidrBlockAssociationSet/>")
	}
	x.tagSet(s.tags)
	x.close("item")
}

func (w *world) renderVPC(x xw, v *vpc) {
	x.open("item")
	x.el("vpcId", v.id)
	x.el("ownerId", w.account)
	x.el("state", "available")
	x.el("cidrBlock", v.cidr.String())
	x.open("cidrBlockAssociationSet")
	x.open("item")
	x.el("cidrBlock", v.cidr.String())
	x.el("associationId", "vpc-cidr-assoc-"+v.id[4:])
	x.WriteString("<cidrBlockState><state>associated</state></cidrBlockState>")
	x.close("item")
	x.close("cidrBlockAssociationSet")
	if v.v6.IsValid() {
		x.open("ipv6CidrBlockAssociationSet")
		x.open("item")
		x.el("ipv6CidrBlock", v.v6.String())
		x.el("associationId", "vpc-cidr-assoc-6"+v.id[5:])
		x.WriteString("<ipv6CidrBlockState><state>associated</state></ipv6CidrBlockState>")
		x.el("networkBorderGroup", w.region)
		x.el("ipv6Pool", "Amazon")
		x.close("item")
		x.close("ipv6CidrBlockAssociationSet")
	}
	x.el("dhcpOptionsId", "dopt-0123456789abcdef0")
	x.el("instanceTenancy", "default")
	x.elBool("isDefault", false)
	x.tagSet(v.tags)
	x.close("item")
}
