package ec2sim

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ELBv2Timing sets how long the emulated ELBv2 transitions take. Zero
// values (the default) make them instant.
type ELBv2Timing struct {
	// Provisioning is how long a new load balancer stays "provisioning"
	// before it is "active". CreateLoadBalancer always answers
	// "provisioning", as AWS does.
	Provisioning time.Duration
	// InitialHealth is how long a registered target is "initial"
	// (Elb.RegistrationInProgress) before its health is known.
	InitialHealth time.Duration
	// Draining is how long a deregistered target stays "draining"; with 0
	// it is gone at once. deregistration_delay.timeout_seconds is stored
	// and reported but does not time anything.
	Draining time.Duration
}

// elbState holds the account's ELBv2 resources (under Sim.mu).
type elbState struct {
	seq       int
	ids       map[string]bool
	lbs       []*elbLB // creation order
	lbByARN   map[string]*elbLB
	tgs       []*elbTG
	tgByARN   map[string]*elbTG
	listeners map[string]*elbListener
	timing    ELBv2Timing
}

type elbMapping struct {
	subnet               *subnet
	allocation, privIPv4 string
	ipv6                 string
}

type elbLB struct {
	seq                     int
	arn, id, name           string
	scheme, ipType, natIPv6 string
	vpc                     *vpc
	mappings                []elbMapping
	sgs                     []string
	created                 time.Time
	tags                    map[string]string
	attrs                   map[string]string
	listeners               []*elbListener // creation order
}

type elbForward struct {
	tg     *elbTG
	weight int
	order  int // 0 = not given
}

type elbListener struct {
	seq       int
	arn       string
	lb        *elbLB
	port      int
	protocol  string
	forward   elbForward
	certs     []string
	sslPolicy string
	alpn      []string
	tags      map[string]string
}

type elbHealth struct {
	enabled                            bool
	protocol, port, path, matcher      string
	interval, timeout, healthy, unheal int
}

type elbTarget struct {
	id           string
	port         int
	az           string
	registered   time.Time
	deregistered time.Time // zero while registered
}

type elbTG struct {
	seq                int
	arn, name          string
	protocol           string
	port               int
	vpc                *vpc
	targetType, ipType string
	health             elbHealth
	attrs              map[string]string
	tags               map[string]string
	targets            []*elbTarget
}

// elbv2 returns the ELBv2 state, creating it on first use.
func (w *world) elbv2() *elbState {
	if w.elb == nil {
		w.elb = &elbState{ids: map[string]bool{}, lbByARN: map[string]*elbLB{}, tgByARN: map[string]*elbTG{},
			listeners: map[string]*elbListener{}}
	}
	return w.elb
}

// newHexID returns 16 hex digits derived from the seed, unique in st.
func (st *elbState) newHexID(w *world, kind string) string {
	for {
		st.seq++
		id := genID(kind, w.seed, uint64(st.seq))
		id = id[len(id)-16:]
		if !st.ids[id] {
			st.ids[id] = true
			return id
		}
	}
}

func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func (w *world) elbARN(resource string) string {
	return "arn:" + partition(w.region) + ":elasticloadbalancing:" + w.region + ":" + w.account + ":" + resource
}

var (
	lbARNRe       = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer/(net|app|gwy)/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$`)
	tgARNRe       = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$`)
	listenerARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/(net|app|gwy)/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}/[0-9a-f]{16}$`)
	elbNameRe     = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
)

// nlbHostedZones are the Route 53 hosted zone IDs of Network Load Balancers
// per region (ELB endpoints table); other regions get a made-up stable ID.
var nlbHostedZones = map[string]string{
	"us-east-1": "Z26RNL4JYFTOTI", "us-east-2": "ZLMOA37VPKANP", "us-west-1": "Z24FKFUX50B4VW",
	"us-west-2": "Z18D5FSROUN65G", "eu-west-1": "Z2IFOLAFXWLO4F", "eu-west-2": "ZD4D7Y8KGAS4G",
	"eu-central-1": "Z3F0SRJ5LGBH90", "ap-northeast-1": "Z31USIVHYNEOWT", "ap-southeast-2": "ZCT6FZBF4DROD",
	"ap-south-1": "ZVDDRBQ08TROA",
}

func (w *world) nlbHostedZone() string {
	if z, ok := nlbHostedZones[w.region]; ok {
		return z
	}
	x := splitmix(fnvString(w.region))
	const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := []byte("Z")
	for range 13 {
		b = append(b, abc[x%36])
		x /= 36
	}
	return string(b)
}

func (lb *elbLB) dnsName(w *world) string {
	return fmt.Sprintf("%s-%s.elb.%s.amazonaws.com", lb.name, lb.id, w.region)
}

func (lb *elbLB) state(st *elbState, now time.Time) string {
	if now.Before(lb.created.Add(st.timing.Provisioning)) {
		return "provisioning"
	}
	return "active"
}

func (lb *elbLB) zones() []string {
	out := make([]string, len(lb.mappings))
	for i, m := range lb.mappings {
		out[i] = m.subnet.zone.name
	}
	return out
}

// lookupLB finds a load balancer by ARN: ValidationError when malformed,
// LoadBalancerNotFound when unknown.
func (st *elbState) lookupLB(arn string) (*elbLB, *apiError) {
	if arn == "" {
		return nil, validation("A load balancer ARN must be specified")
	}
	if !lbARNRe.MatchString(arn) {
		return nil, validation("'%s' is not a valid load balancer ARN", arn)
	}
	lb := st.lbByARN[arn]
	if lb == nil {
		return nil, elbErrf("LoadBalancerNotFound", "One or more load balancers not found")
	}
	return lb, nil
}

func (st *elbState) lookupTG(arn string) (*elbTG, *apiError) {
	if arn == "" {
		return nil, validation("A target group ARN must be specified")
	}
	if !tgARNRe.MatchString(arn) {
		return nil, validation("'%s' is not a valid target group ARN", arn)
	}
	tg := st.tgByARN[arn]
	if tg == nil {
		return nil, elbErrf("TargetGroupNotFound", "One or more target groups not found")
	}
	return tg, nil
}

func (st *elbState) lookupListener(arn string) (*elbListener, *apiError) {
	if arn == "" {
		return nil, validation("A listener ARN must be specified")
	}
	if !listenerARNRe.MatchString(arn) {
		return nil, validation("'%s' is not a valid listener ARN", arn)
	}
	l := st.listeners[arn]
	if l == nil {
		return nil, elbErrf("ListenerNotFound", "One or more listeners not found")
	}
	return l, nil
}

// lbsOf returns the load balancers whose listeners forward to tg.
func (st *elbState) lbsOf(tg *elbTG) []*elbLB {
	var out []*elbLB
	for _, lb := range st.lbs {
		for _, l := range lb.listeners {
			if l.forward.tg == tg {
				out = append(out, lb)
				break
			}
		}
	}
	return out
}

func (st *elbState) tgsOf(lb *elbLB) []*elbTG {
	var out []*elbTG
	for _, l := range lb.listeners {
		if l.forward.tg != nil && !slices.Contains(out, l.forward.tg) {
			out = append(out, l.forward.tg)
		}
	}
	slices.SortFunc(out, func(a, b *elbTG) int { return a.seq - b.seq })
	return out
}

func (st *elbState) removeLB(lb *elbLB) {
	for _, l := range lb.listeners {
		delete(st.listeners, l.arn)
	}
	lb.listeners = nil
	delete(st.lbByARN, lb.arn)
	st.lbs = slices.DeleteFunc(st.lbs, func(x *elbLB) bool { return x == lb })
}

func checkELBName(kind, name string, lb bool) *apiError {
	switch {
	case name == "":
		return validation("A %s name must be specified", kind)
	case len(name) > 32:
		return validation("%s name '%s' cannot be longer than '32' characters", upperFirst(kind), name)
	case !elbNameRe.MatchString(name):
		return validation("%s name '%s' can only contain characters that are alphanumeric characters or hyphens(-)", upperFirst(kind), name)
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return validation("%s name '%s' cannot begin or end with a hyphen(-)", upperFirst(kind), name)
	case lb && strings.HasPrefix(name, "internal-"):
		return validation("%s name '%s' cannot begin with 'internal-'", upperFirst(kind), name)
	}
	return nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// targetHealth is the health state, reason and description of t in tg.
func (st *elbState) targetHealth(w *world, tg *elbTG, t *elbTarget, now time.Time) (state, reason, desc string) {
	if !t.deregistered.IsZero() {
		return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
	}
	lbs := st.lbsOf(tg)
	if len(lbs) == 0 {
		return "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
	}
	if tg.targetType == "instance" {
		inst := w.instByID[t.id]
		if s := inst.state(); s != "running" {
			return "unused", "Target.InvalidState", "Target is in the " + s + " state"
		}
	}
	enabled := false
	for _, lb := range lbs {
		if slices.Contains(lb.zones(), t.az) {
			enabled = true
		}
	}
	if !enabled {
		return "unused", "Target.NotInUse", "Target is in an Availability Zone that is not enabled for the load balancer"
	}
	if now.Before(t.registered.Add(st.timing.InitialHealth)) {
		return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
	}
	if tg.targetType == "ip" && !w.ipHeldByRunningInstance(t.id) {
		return "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
	}
	return "healthy", "", ""
}

// ipHeldByRunningInstance reports whether a live ENI of a running instance
// holds the address.
func (w *world) ipHeldByRunningInstance(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, e := range w.enis {
		if e.inst.state() != "running" {
			continue
		}
		if slices.Contains(e.v4, a) {
			return true
		}
		for _, v := range e.v6 {
			if v.addr == a {
				return true
			}
		}
	}
	return false
}

// prune drops targets whose draining has ended.
func (st *elbState) prune(now time.Time) {
	for _, tg := range st.tgs {
		tg.targets = slices.DeleteFunc(tg.targets, func(t *elbTarget) bool {
			return !t.deregistered.IsZero() && !now.Before(t.deregistered.Add(st.timing.Draining))
		})
	}
}
