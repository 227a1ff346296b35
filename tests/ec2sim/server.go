package ec2sim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The static test credentials the emulator accepts.
const (
	AccessKeyID     = "AKIAEC2SIMEXAMPLE001"
	SecretAccessKey = "ec2sim/secret/access/key/EXAMPLE0000000000"
)

// APIVersion is the only EC2 API version the emulator speaks.
const APIVersion = "2016-11-15"

const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// Options configure Start.
type Options struct {
	// Scenario is the initial world; nil means the defaults with no instances.
	Scenario *Scenario
	// Policy is an optional IAM policy JSON; nil allows everything.
	Policy []byte
	// Throttling enforces AWS's default token buckets.
	Throttling bool
	// Addr is the listen address, default 127.0.0.1:0. With an IPv4 address
	// the server also listens on [::1], on the same port when it is free.
	// With an IPv6 address (e.g. "[::1]:0") it listens only there, so it
	// runs where there is no IPv4 at all; Endpoint and EndpointIPv6 are then
	// both that address.
	Addr string
	// IMDSAddr, when set (e.g. "[fd00:ec2::254]:80"), adds a listener that
	// serves only IMDS (/latest/...; anything else is 404). IMDSEndpoint
	// returns its URL.
	IMDSAddr string
	// VerifySignatures recomputes each SigV4 signature with the test secret.
	// Off by default: a test transport that reroutes requests to the
	// emulator changes the signed Host header. The credential scope (key,
	// region, service, date) is always checked.
	VerifySignatures bool
}

type handlerFunc func(w *world, p *params, rc reqCtx) *apiError

// action describes one EC2 API action.
type action struct {
	handle   handlerFunc
	mutating bool
}

var actions = map[string]action{
	"DescribeInstances":         {handle: describeInstances},
	"DescribeNetworkInterfaces": {handle: describeNetworkInterfaces},
	"DescribeSubnets":           {handle: describeSubnets},
	"DescribeVpcs":              {handle: describeVpcs},
	"DescribeAvailabilityZones": {handle: describeAvailabilityZones},
	"DescribeInstanceTypes":     {handle: describeInstanceTypes},
	"DescribeInstanceTopology":  {handle: describeInstanceTopology},
	"AssignIpv6Addresses":       {handle: assignIpv6Addresses, mutating: true},
	"UnassignIpv6Addresses":     {handle: unassignIpv6Addresses, mutating: true},
	"CreateTags":                {handle: createTags, mutating: true},
	"DeleteTags":                {handle: deleteTags, mutating: true},
	// Security groups and ENI attributes (sg_api.go, eni_attr.go).
	"CreateSecurityGroup":             {handle: createSecurityGroup, mutating: true},
	"DescribeSecurityGroups":          {handle: describeSecurityGroups},
	"DeleteSecurityGroup":             {handle: deleteSecurityGroup, mutating: true},
	"AuthorizeSecurityGroupIngress":   {handle: authorizeSecurityGroupIngress, mutating: true},
	"RevokeSecurityGroupIngress":      {handle: revokeSecurityGroupIngress, mutating: true},
	"ModifyNetworkInterfaceAttribute": {handle: modifyNetworkInterfaceAttribute, mutating: true},
}

// Sim is a running emulator.
type Sim struct {
	mu sync.Mutex // guards w
	w  *world

	cmu       sync.Mutex // guards everything below
	counts    map[string]map[string]int
	faults    map[string]Fault
	frng      *rand.Rand
	throttle  bool
	buckets   map[string]*bucket
	bucketCfg map[string][2]float64
	timers    []*time.Timer
	tokens    map[string]time.Time
	roleCreds []*roleCreds // oldest first; the last is current

	role      string // instance role name, "" = none
	profileID string

	policy    *policy
	verifySig bool
	reqSeq    atomic.Uint64
	srv       *http.Server
	listeners []net.Listener
	endpoint  string
	endpoint6 string
	imdsURL   string
	imdsSrv   *http.Server
	closed    chan struct{}
	closeOnce sync.Once
}

// Start builds the world of opts.Scenario and serves it on loopback.
func Start(opts Options) (*Sim, error) {
	sc := opts.Scenario
	if sc == nil {
		sc = &Scenario{}
	}
	w, err := newWorld(sc)
	if err != nil {
		return nil, fmt.Errorf("build scenario: %w", err)
	}
	s := &Sim{
		w: w, counts: map[string]map[string]int{}, faults: map[string]Fault{},
		frng: rand.New(rand.NewPCG(uint64(w.seed), 0xfa17)), throttle: opts.Throttling,
		buckets: map[string]*bucket{}, bucketCfg: map[string][2]float64{}, tokens: map[string]time.Time{},
		closed: make(chan struct{}), verifySig: opts.VerifySignatures,
	}
	if opts.Policy != nil {
		if s.policy, err = parsePolicy(opts.Policy); err != nil {
			return nil, err
		}
	}
	if sc.InstanceRole != "" {
		s.role = sc.InstanceRole
		s.profileID = "AIPA" + randString(17, upperAlnum)
		s.roleCreds = []*roleCreds{newRoleCreds(time.Now())}
	}
	if err := s.listen(opts.Addr); err != nil {
		return nil, err
	}
	var imdsLn net.Listener
	if opts.IMDSAddr != "" {
		if imdsLn, err = net.Listen("tcp", opts.IMDSAddr); err != nil {
			for _, ln := range s.listeners {
				ln.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", opts.IMDSAddr, err)
		}
		s.imdsURL = "http://" + imdsLn.Addr().String()
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	for _, ln := range s.listeners {
		go func() { _ = s.srv.Serve(ln) }()
	}
	if imdsLn != nil {
		s.imdsSrv = &http.Server{Handler: http.HandlerFunc(s.serveIMDSOnly), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = s.imdsSrv.Serve(imdsLn) }()
	}
	return s, nil
}

// listen opens the main listeners: addr alone when it is an IPv6 address,
// else addr (IPv4) plus [::1] on the same port when free.
func (s *Sim) listen(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
		ln, err := net.Listen("tcp6", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		s.listeners = []net.Listener{ln}
		s.endpoint = "http://" + ln.Addr().String()
		s.endpoint6 = s.endpoint
		return nil
	}
	ln4, err := net.Listen("tcp4", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	port := ln4.Addr().(*net.TCPAddr).Port
	ln6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", port))
	if err != nil {
		ln6, err = net.Listen("tcp6", "[::1]:0")
	}
	if err != nil {
		ln4.Close()
		return fmt.Errorf("listen [::1]: %w", err)
	}
	s.listeners = []net.Listener{ln4, ln6}
	s.endpoint = "http://" + ln4.Addr().String()
	s.endpoint6 = "http://" + ln6.Addr().String()
	return nil
}

// serveIMDSOnly is the handler of the IMDSAddr listener.
func (s *Sim) serveIMDSOnly(rw http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/latest/") {
		http.Error(rw, "Not Found", http.StatusNotFound)
		return
	}
	s.serveIMDS(rw, r)
}

// Close stops the server and pending scheduled terminations.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		_ = s.srv.Close()
		if s.imdsSrv != nil {
			_ = s.imdsSrv.Close()
		}
		s.cmu.Lock()
		for _, t := range s.timers {
			t.Stop()
		}
		s.cmu.Unlock()
	})
}

// Endpoint is the IPv4 base URL, e.g. http://127.0.0.1:PORT.
func (s *Sim) Endpoint() string { return s.endpoint }

// EndpointIPv6 is the IPv6 base URL, e.g. http://[::1]:PORT.
func (s *Sim) EndpointIPv6() string { return s.endpoint6 }

// IMDSEndpoint is the base URL of the IMDS-only listener (Options.IMDSAddr),
// e.g. http://[fd00:ec2::254]:80, or Endpoint() when there is none.
func (s *Sim) IMDSEndpoint() string {
	if s.imdsURL != "" {
		return s.imdsURL
	}
	return s.endpoint
}

// Region is the scenario's region.
func (s *Sim) Region() string { return s.w.region }

// ServeHTTP routes EC2 (/), IMDS (/latest/) and admin (/_ec2sim/) requests.
func (s *Sim) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/latest/"):
		s.serveIMDS(rw, r)
	case strings.HasPrefix(r.URL.Path, "/_ec2sim/"):
		s.serveAdmin(rw, r)
	case s.isELBv2(r):
		s.serveELBv2(rw, r) // elbv2.go
	default:
		s.serveEC2(rw, r)
	}
}

func (s *Sim) requestID() string {
	n := s.reqSeq.Add(1)
	x := splitmix(n ^ uint64(s.w.seed)<<32)
	return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(x), uint16(x>>32), uint16(x>>48)&0xfff, n>>48&0xfff, n&0xffffffffffff)
}

// readForm extracts the ec2Query parameters from a POST body (or a GET
// query string).
func readForm(r *http.Request) (*params, []byte, *apiError) {
	switch r.Method {
	case http.MethodGet:
		p, err := parseForm(r.URL.RawQuery)
		return p, nil, err
	case http.MethodPost:
	default:
		return nil, nil, errf(http.StatusBadRequest, "InvalidHttpRequest", "The HTTP method %s is not supported.", r.Method)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, nil, errf(http.StatusBadRequest, "InvalidHttpRequest", "Unsupported content type %q", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return nil, nil, errf(http.StatusBadRequest, "InvalidHttpRequest", "read body: %v", err)
	}
	if len(body) > 1<<20 {
		return nil, nil, errf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is too large.")
	}
	p, aerr := parseForm(string(body))
	return p, body, aerr
}

// checkAuth requires a SigV4 Authorization header scoped to the region and
// service (ec2, or elasticloadbalancing for ELBv2) with the emulator's
// static access key, or with the access key of the instance-role
// credentials plus their session token in X-Amz-Security-Token, and, when
// enabled, a valid signature.
func (s *Sim) checkAuth(r *http.Request, payload []byte, service string) *apiError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return errf(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return errf(http.StatusUnauthorized, "AuthFailure", "Unsupported authorization scheme; use AWS4-HMAC-SHA256")
	}
	var cred, signed, sig string
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "Credential="); ok {
			cred = v
		} else if v, ok := strings.CutPrefix(part, "SignedHeaders="); ok {
			signed = v
		} else if v, ok := strings.CutPrefix(part, "Signature="); ok {
			sig = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || len(scope[1]) != 8 {
		return errf(http.StatusUnauthorized, "AuthFailure", "Malformed credential scope %q", cred)
	}
	secret := SecretAccessKey
	if scope[0] != AccessKeyID {
		rc := s.roleCredsFor(scope[0])
		if rc == nil {
			return errf(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		}
		if tok := r.Header.Get("X-Amz-Security-Token"); !hmac.Equal([]byte(tok), []byte(rc.token)) {
			return errf(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		}
		if time.Now().After(rc.expires) {
			return errf(http.StatusBadRequest, "RequestExpired", "Request has expired.")
		}
		secret = rc.secret
	}
	if scope[2] != s.w.region || scope[3] != service {
		return errf(http.StatusUnauthorized, "AuthFailure",
			"Credential should be scoped to a valid region and service: expected %s/%s, got %s/%s", s.w.region, service, scope[2], scope[3])
	}
	if d := r.Header.Get("X-Amz-Date"); d != "" {
		t, err := time.Parse("20060102T150405Z", d)
		if err != nil || t.Format("20060102") != scope[1] {
			return errf(http.StatusUnauthorized, "AuthFailure", "X-Amz-Date %q does not match the credential scope", d)
		}
		if skew := time.Since(t); skew > 15*time.Minute || skew < -15*time.Minute {
			return errf(http.StatusBadRequest, "RequestExpired", "Request has expired.")
		}
	}
	if !s.verifySig {
		return nil
	}
	return verifySignature(r, payload, secret, scope, signed, sig)
}

func (s *Sim) serveEC2(rw http.ResponseWriter, r *http.Request) {
	rid := s.requestID()
	p, body, aerr := readForm(r)
	name := ""
	if aerr == nil {
		name = p.get("Action")
		aerr = s.checkAuth(r, body, "ec2")
	}
	var act action
	var rc reqCtx
	var out bytes.Buffer
	if aerr == nil {
		act, aerr = s.precheck(r.Context(), name, p, &rc)
	}
	if aerr == nil {
		rc.x = xw{&out}
		s.mu.Lock()
		aerr = act.handle(s.w, p, rc)
		s.mu.Unlock()
		aerr = s.replyFaults(r, s.fault(name), aerr, errf(http.StatusInternalServerError, "InternalError", "%s", faultMessage("InternalError")))
	}
	s.count(name, outcome(aerr, "RequestLimitExceeded"))
	h := rw.Header()
	h.Set("Content-Type", "text/xml;charset=UTF-8")
	h.Set("Server", "AmazonEC2")
	h.Set("X-Amzn-Requestid", rid)
	if aerr != nil {
		rw.WriteHeader(aerr.Status)
		var b bytes.Buffer
		x := xw{&b}
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
		x.open("Response")
		x.open("Errors")
		x.open("Error")
		x.el("Code", aerr.Code)
		x.el("Message", aerr.Message)
		x.close("Error")
		x.close("Errors")
		x.el("RequestID", rid)
		x.close("Response")
		_, _ = rw.Write(b.Bytes())
		return
	}
	rw.WriteHeader(http.StatusOK)
	var b bytes.Buffer
	b.Grow(out.Len() + 200)
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%sResponse xmlns=%q>\n    <requestId>%s</requestId>\n", name, xmlns, rid)
	b.Write(out.Bytes())
	fmt.Fprintf(&b, "\n</%sResponse>", name)
	_, _ = rw.Write(b.Bytes())
}

// replyFaults applies f's reply faults to a call the world has carried out
// (aerr nil) or refused: a lost reply answers lost although the call took
// effect, and ReplyLatency holds the answer back.
func (s *Sim) replyFaults(r *http.Request, f Fault, aerr, lost *apiError) *apiError {
	if aerr == nil && f.LostReplyRate > 0 && s.roll() < f.LostReplyRate {
		aerr = lost
	}
	if f.ReplyLatency > 0 {
		select {
		case <-time.After(f.ReplyLatency):
		case <-r.Context().Done():
		case <-s.closed:
		}
	}
	return aerr
}

// outcome is the count label of a call's result: success, throttled (when
// answered with the API's throttling code) or the error code.
func outcome(aerr *apiError, throttleCode string) string {
	switch {
	case aerr == nil:
		return "success"
	case aerr.Code == throttleCode:
		return "throttled"
	}
	return aerr.Code
}

// precheck validates Version and Action and applies the policy, DryRun,
// throttling and injected faults, in that order.
func (s *Sim) precheck(ctx context.Context, name string, p *params, rc *reqCtx) (action, *apiError) {
	switch v := p.get("Version"); {
	case !p.has("Version"):
		return action{}, missing("Version")
	case v != APIVersion:
		return action{}, errf(http.StatusBadRequest, "NoSuchVersion", "The requested version (%s) of service AmazonEC2 does not exist", v)
	}
	if name == "" {
		return action{}, errf(http.StatusBadRequest, "MissingAction", "The request must contain the parameter Action")
	}
	act, ok := actions[name]
	if !ok {
		return action{}, errf(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service.", name)
	}
	if s.policy != nil && !s.policy.allows(name, s.resources(name, p)) {
		return act, errf(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation.")
	}
	dry, aerr := p.boolParam("DryRun")
	if aerr != nil {
		return act, aerr
	}
	if dry {
		return act, errf(http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	}
	now := time.Now()
	if !s.takeToken(name, p, now) {
		return act, errf(http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
	}
	f := s.fault(name)
	if aerr := s.requestFaults(ctx, f, "InternalError", "Unavailable", defaultStatus, faultMessage); aerr != nil {
		return act, aerr
	}
	rc.now = time.Now()
	if f.ConsistencyLag > 0 && !act.mutating {
		rc.at = rc.now.Add(-f.ConsistencyLag)
	}
	return act, nil
}

// requestFaults applies f's request faults before a call is carried out:
// Latency, then an injected error (defaultCode when f names none) at
// ErrorRate. closedCode answers when the emulator shuts down meanwhile.
func (s *Sim) requestFaults(ctx context.Context, f Fault, defaultCode, closedCode string, status func(string) int, message func(string) string) *apiError {
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errf(http.StatusServiceUnavailable, "RequestCanceled", "The client went away.")
		case <-s.closed:
			t.Stop()
			return errf(http.StatusServiceUnavailable, closedCode, "The service is shutting down.")
		}
	}
	if f.ErrorRate > 0 && s.roll() < f.ErrorRate {
		code, st := f.Code, f.Status
		if code == "" {
			code = defaultCode
		}
		if st == 0 {
			st = status(code)
		}
		return errf(st, code, "%s", message(code))
	}
	return nil
}

func defaultStatus(code string) int {
	switch code {
	case "InternalError":
		return http.StatusInternalServerError
	case "RequestLimitExceeded", "Unavailable", "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case "UnauthorizedOperation":
		return http.StatusForbidden
	case "AuthFailure":
		return http.StatusUnauthorized
	}
	return http.StatusBadRequest
}

func faultMessage(code string) string {
	switch code {
	case "InternalError":
		return "An internal error has occurred. Retry your request, but if the problem persists, contact us with details by posting a message on the AWS forums."
	case "RequestLimitExceeded":
		return "Request limit exceeded."
	case "Unavailable", "ServiceUnavailable":
		return "The server is overloaded and can't handle the request."
	}
	return "Injected fault " + code + "."
}

func (s *Sim) roll() float64 {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.frng.Float64()
}

func (s *Sim) count(action, outcome string) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	m := s.counts[action]
	if m == nil {
		m = map[string]int{}
		s.counts[action] = m
	}
	m[outcome]++
}

// errClosed is returned by API calls on a closed Sim.
var errClosed = errors.New("ec2sim: closed")
