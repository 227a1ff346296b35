package ec2sim

// The Elastic Load Balancing v2 Query API (Version 2015-12-01, awsQuery
// protocol), Network Load Balancers only. It shares the port, the SigV4
// checks, the IAM policy, the throttling switch, faults and call counts
// with the EC2 API. Keys of counts, faults and buckets are the action
// prefixed with ELBv2KeyPrefix, e.g. "elasticloadbalancing:DescribeTags",
// so they never collide with EC2's.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ELBv2APIVersion is the only Elastic Load Balancing API version served.
const ELBv2APIVersion = "2015-12-01"

// ELBv2Service is the SigV4 signing name (credential scope service) and
// the IAM action prefix of the Elastic Load Balancing API.
const ELBv2Service = "elasticloadbalancing"

// ELBv2KeyPrefix prefixes ELBv2 action names in Calls, Counts, SetFault and
// SetBucket keys: "elasticloadbalancing:CreateLoadBalancer".
const ELBv2KeyPrefix = ELBv2Service + ":"

const elbXMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

// ELBv2 throttling bucket keys (SetBucket). AWS documents an account-level
// bucket shared by every ELB API action plus one bucket per category; a
// call needs a token from both.
const (
	ELBv2BucketAccount           = ELBv2KeyPrefix + "account"
	ELBv2BucketNonMutating       = ELBv2KeyPrefix + "non-mutating"
	ELBv2BucketMutating          = ELBv2KeyPrefix + "mutating"
	ELBv2BucketRegistration      = ELBv2KeyPrefix + "registration"
	ELBv2BucketResourceIntensive = ELBv2KeyPrefix + "resource-intensive"
)

// elbBuckets are AWS's defaults (capacity, refill per second) from
// "Request throttling for the Elastic Load Balancing API".
var elbBuckets = map[string][2]float64{
	ELBv2BucketAccount:           {40, 10},
	ELBv2BucketNonMutating:       {40, 10},
	ELBv2BucketMutating:          {20, 3},
	ELBv2BucketRegistration:      {20, 4},
	ELBv2BucketResourceIntensive: {10, 0.2},
}

// elbCtx is what an ELBv2 handler works with; the world lock is held.
type elbCtx struct {
	w   *world
	st  *elbState
	x   xw
	now time.Time
}

type elbHandler func(c *elbCtx, p *params) *apiError

type elbAction struct {
	handle   elbHandler
	mutating bool
	bucket   string
	// params are the accepted parameter shapes (list indexes as #); the
	// bare name of every list is accepted too (the SDK's empty-list form).
	params []string
}

var tagShapes = []string{"Tags.member.#.Key", "Tags.member.#.Value"}

var targetShapes = []string{"Targets.member.#.Id", "Targets.member.#.Port", "Targets.member.#.AvailabilityZone", "Targets.member.#.QuicServerId"}

var actionShapes = []string{
	"DefaultActions.member.#.Type", "DefaultActions.member.#.TargetGroupArn", "DefaultActions.member.#.Order",
	"DefaultActions.member.#.ForwardConfig.TargetGroups.member.#.TargetGroupArn",
	"DefaultActions.member.#.ForwardConfig.TargetGroups.member.#.Weight",
	"DefaultActions.member.#.ForwardConfig.TargetGroupStickinessConfig.Enabled",
	"DefaultActions.member.#.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds",
	"Certificates.member.#.CertificateArn", "Certificates.member.#.IsDefault", "SslPolicy", "AlpnPolicy.member.#",
}

var subnetShapes = []string{"Subnets.member.#", "SubnetMappings.member.#.SubnetId", "SubnetMappings.member.#.AllocationId",
	"SubnetMappings.member.#.PrivateIPv4Address", "SubnetMappings.member.#.IPv6Address", "IpAddressType", "EnablePrefixForIpv6SourceNat"}

var healthShapes = []string{"HealthCheckEnabled", "HealthCheckIntervalSeconds", "HealthCheckPath", "HealthCheckPort",
	"HealthCheckProtocol", "HealthCheckTimeoutSeconds", "HealthyThresholdCount", "UnhealthyThresholdCount", "Matcher.HttpCode", "Matcher.GrpcCode"}

func join(lists ...[]string) []string { return slices.Concat(lists...) }

var elbActions = map[string]elbAction{
	"CreateLoadBalancer": {handle: createLoadBalancer, mutating: true, bucket: ELBv2BucketResourceIntensive,
		params: join([]string{"Name", "Scheme", "Type", "SecurityGroups.member.#", "CustomerOwnedIpv4Pool"}, subnetShapes, tagShapes)},
	"DescribeLoadBalancers": {handle: describeLoadBalancers, bucket: ELBv2BucketNonMutating,
		params: []string{"LoadBalancerArns.member.#", "Names.member.#", "Marker", "PageSize"}},
	"DeleteLoadBalancer": {handle: deleteLoadBalancer, mutating: true, bucket: ELBv2BucketMutating, params: []string{"LoadBalancerArn"}},
	"SetIpAddressType":   {handle: setIPAddressType, mutating: true, bucket: ELBv2BucketMutating, params: []string{"LoadBalancerArn", "IpAddressType"}},
	"SetSubnets": {handle: setSubnets, mutating: true, bucket: ELBv2BucketResourceIntensive,
		params: join([]string{"LoadBalancerArn"}, subnetShapes)},
	"DescribeLoadBalancerAttributes": {handle: describeLoadBalancerAttributes, bucket: ELBv2BucketNonMutating, params: []string{"LoadBalancerArn"}},
	"ModifyLoadBalancerAttributes": {handle: modifyLoadBalancerAttributes, mutating: true, bucket: ELBv2BucketMutating,
		params: []string{"LoadBalancerArn", "Attributes.member.#.Key", "Attributes.member.#.Value"}},
	"CreateTargetGroup": {handle: createTargetGroup, mutating: true, bucket: ELBv2BucketMutating,
		params: join([]string{"Name", "Protocol", "ProtocolVersion", "Port", "VpcId", "TargetType", "IpAddressType", "TargetControlPort"}, healthShapes, tagShapes)},
	"DescribeTargetGroups": {handle: describeTargetGroups, bucket: ELBv2BucketNonMutating,
		params: []string{"LoadBalancerArn", "TargetGroupArns.member.#", "Names.member.#", "Marker", "PageSize"}},
	"ModifyTargetGroup": {handle: modifyTargetGroup, mutating: true, bucket: ELBv2BucketMutating,
		params: join([]string{"TargetGroupArn"}, healthShapes)},
	"DeleteTargetGroup":             {handle: deleteTargetGroup, mutating: true, bucket: ELBv2BucketMutating, params: []string{"TargetGroupArn"}},
	"DescribeTargetGroupAttributes": {handle: describeTargetGroupAttributes, bucket: ELBv2BucketNonMutating, params: []string{"TargetGroupArn"}},
	"ModifyTargetGroupAttributes": {handle: modifyTargetGroupAttributes, mutating: true, bucket: ELBv2BucketMutating,
		params: []string{"TargetGroupArn", "Attributes.member.#.Key", "Attributes.member.#.Value"}},
	"RegisterTargets": {handle: registerTargets, mutating: true, bucket: ELBv2BucketRegistration,
		params: join([]string{"TargetGroupArn"}, targetShapes)},
	"DeregisterTargets": {handle: deregisterTargets, mutating: true, bucket: ELBv2BucketRegistration,
		params: join([]string{"TargetGroupArn"}, targetShapes)},
	"DescribeTargetHealth": {handle: describeTargetHealth, bucket: ELBv2BucketNonMutating,
		params: join([]string{"TargetGroupArn", "Include.member.#"}, targetShapes)},
	"CreateListener": {handle: createListener, mutating: true, bucket: ELBv2BucketMutating,
		params: join([]string{"LoadBalancerArn", "Port", "Protocol"}, actionShapes, tagShapes)},
	"DescribeListeners": {handle: describeListeners, bucket: ELBv2BucketNonMutating,
		params: []string{"LoadBalancerArn", "ListenerArns.member.#", "Marker", "PageSize"}},
	"ModifyListener": {handle: modifyListener, mutating: true, bucket: ELBv2BucketMutating,
		params: join([]string{"ListenerArn", "Port", "Protocol"}, actionShapes)},
	"DeleteListener": {handle: deleteListener, mutating: true, bucket: ELBv2BucketMutating, params: []string{"ListenerArn"}},
	"AddTags": {handle: addTags, mutating: true, bucket: ELBv2BucketMutating,
		params: join([]string{"ResourceArns.member.#"}, tagShapes)},
	"RemoveTags": {handle: removeTags, mutating: true, bucket: ELBv2BucketMutating,
		params: []string{"ResourceArns.member.#", "TagKeys.member.#"}},
	"DescribeTags": {handle: describeTags, bucket: ELBv2BucketNonMutating, params: []string{"ResourceArns.member.#"}},
}

// elbv2Mutating reports whether a counts key names a state-changing ELBv2
// action (for MutatingCalls).
func elbv2Mutating(key string) bool {
	name, ok := strings.CutPrefix(key, ELBv2KeyPrefix)
	return ok && elbActions[name].mutating
}

// scopeService returns the service of an Authorization header's SigV4
// credential scope, "" when there is none.
func scopeService(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}

// isELBv2 routes a request to the ELBv2 API: Version=2015-12-01 in the
// query or body, or, without a Version, a credential scoped to
// elasticloadbalancing. A request naming EC2's version goes to EC2 whatever
// its scope, so a mismatched scope is answered by the API being called.
// The body is read and put back.
func (s *Sim) isELBv2(r *http.Request) bool {
	const want = "Version=" + ELBv2APIVersion
	version := func(form string) (found, elb bool) {
		for _, kv := range strings.Split(form, "&") {
			if strings.HasPrefix(kv, "Version=") {
				return true, kv == want
			}
		}
		return false, false
	}
	if found, elb := version(r.URL.RawQuery); found {
		return elb
	}
	if r.Method == http.MethodPost && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
		if err == nil {
			if found, elb := version(string(body)); found {
				return elb
			}
		}
	}
	return scopeService(r.Header.Get("Authorization")) == ELBv2Service
}

// elbAuth checks SigV4 for the ELBv2 API and answers in its (common query
// API) error codes.
func (s *Sim) elbAuth(r *http.Request, body []byte) *apiError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return errf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	_, cred, _ := strings.Cut(auth, "Credential=")
	cred, _, _ = strings.Cut(cred, ",")
	if scope := strings.Split(strings.TrimSpace(cred), "/"); len(scope) == 5 {
		if scope[3] != ELBv2Service {
			return errf(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: '%s'. ", ELBv2Service)
		}
		if scope[2] != s.w.region {
			return errf(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to a valid region. ")
		}
	}
	aerr := s.checkAuth(r, body, ELBv2Service)
	if aerr == nil {
		return nil
	}
	switch aerr.Code {
	case "AuthFailure":
		if strings.HasPrefix(aerr.Message, "Malformed") || strings.HasPrefix(aerr.Message, "Unsupported") || strings.HasPrefix(aerr.Message, "X-Amz-Date") {
			return errf(http.StatusBadRequest, "IncompleteSignature", "%s", aerr.Message)
		}
		return errf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
	}
	return aerr
}

func (s *Sim) serveELBv2(rw http.ResponseWriter, r *http.Request) {
	rid := s.requestID()
	p, body, aerr := readForm(r)
	name := ""
	if aerr != nil {
		if aerr.Code == "InvalidParameterValue" {
			aerr.Code = "ValidationError"
		}
	} else {
		name = p.get("Action")
		aerr = s.elbAuth(r, body)
	}
	key := ELBv2KeyPrefix + name
	var act elbAction
	var out bytes.Buffer
	if aerr == nil {
		act, aerr = s.elbPrecheck(r.Context(), name, p)
	}
	if aerr == nil {
		s.mu.Lock()
		c := &elbCtx{w: s.w, st: s.w.elbv2(), x: xw{&out}, now: time.Now()}
		aerr = act.handle(c, p)
		s.mu.Unlock()
		if aerr != nil {
			out.Reset()
		}
		aerr = s.replyFaults(r, s.elbFault(key), aerr, errf(http.StatusInternalServerError, "InternalFailure", "%s", elbFaultMessage("InternalFailure")))
	}
	s.count(key, outcome(aerr, "Throttling"))
	h := rw.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("X-Amzn-Requestid", rid)
	var b bytes.Buffer
	x := xw{&b}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	if aerr != nil {
		rw.WriteHeader(aerr.Status)
		b.WriteString(`<ErrorResponse xmlns="` + elbXMLNS + `">`)
		x.open("Error")
		if aerr.Status >= 500 {
			x.el("Type", "Receiver")
		} else {
			x.el("Type", "Sender")
		}
		x.el("Code", aerr.Code)
		x.el("Message", aerr.Message)
		x.close("Error")
		x.el("RequestId", rid)
		x.close("ErrorResponse")
		_, _ = rw.Write(b.Bytes())
		return
	}
	rw.WriteHeader(http.StatusOK)
	b.WriteString("<" + name + `Response xmlns="` + elbXMLNS + `">`)
	x.open(name + "Result")
	b.Write(out.Bytes())
	x.close(name + "Result")
	x.open("ResponseMetadata")
	x.el("RequestId", rid)
	x.close("ResponseMetadata")
	x.close(name + "Response")
	_, _ = rw.Write(b.Bytes())
}

// elbPrecheck validates Version, Action and parameters and applies the
// policy, throttling and injected faults, in that order.
func (s *Sim) elbPrecheck(ctx context.Context, name string, p *params) (elbAction, *apiError) {
	if name == "" {
		return elbAction{}, errf(http.StatusBadRequest, "MissingAction", "Missing Action")
	}
	version := p.get("Version")
	if !p.has("Version") {
		return elbAction{}, errf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter Version")
	}
	act, ok := elbActions[name]
	if !ok || version != ELBv2APIVersion {
		return elbAction{}, errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", name, version)
	}
	if err := p.elbCheckKnown(act.params); err != nil {
		return act, err
	}
	if s.policy != nil {
		res := elbResources(name, p, s.w.region, s.w.account)
		if !s.policy.allowsFull(ELBv2KeyPrefix+name, res) {
			return act, errf(http.StatusForbidden, "AccessDenied",
				"User: arn:aws:iam::%s:user/ec2sim is not authorized to perform: %s%s on resource: %s because no identity-based policy allows the %s%s action",
				s.w.account, ELBv2KeyPrefix, name, strings.Join(res, ", "), ELBv2KeyPrefix, name)
		}
	}
	if !s.elbTakeToken(act.bucket, time.Now()) {
		return act, errf(http.StatusBadRequest, "Throttling", "Rate exceeded")
	}
	f := s.elbFault(ELBv2KeyPrefix + name)
	return act, s.requestFaults(ctx, f, "InternalFailure", "ServiceUnavailable", elbDefaultStatus, elbFaultMessage)
}

func elbDefaultStatus(code string) int {
	switch code {
	case "InternalFailure", "InternalError", "HealthUnavailable", "InsufficientCapacity":
		return http.StatusInternalServerError
	case "ServiceUnavailable", "Unavailable":
		return http.StatusServiceUnavailable
	case "AccessDenied", "InvalidClientTokenId", "SignatureDoesNotMatch", "MissingAuthenticationToken":
		return http.StatusForbidden
	case "PriorRequestNotComplete":
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

func elbFaultMessage(code string) string {
	switch code {
	case "InternalFailure", "InternalError":
		return "The request processing has failed because of an unknown error, exception or failure."
	case "Throttling":
		return "Rate exceeded"
	case "ServiceUnavailable", "Unavailable":
		return "The request has failed due to a temporary failure of the server."
	}
	return "Injected fault " + code + "."
}

// elbFault is the fault of key, else of "elasticloadbalancing:*", else "*".
func (s *Sim) elbFault(key string) Fault {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, k := range []string{key, ELBv2KeyPrefix + "*", "*"} {
		if f, ok := s.faults[k]; ok {
			return f
		}
	}
	return Fault{}
}

// peek refills b up to now and reports whether it holds a token.
func (b *bucket) peek(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.capacity, b.tokens+el*b.rate)
		b.last = now
	}
	return b.tokens >= 1
}

// elbTakeToken takes one token from the account bucket and one from the
// action's category bucket, or none when either is empty.
func (s *Sim) elbTakeToken(category string, now time.Time) bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if !s.throttle {
		return true
	}
	get := func(key string) *bucket {
		b := s.buckets[key]
		if b == nil {
			c, ok := s.bucketCfg[key]
			if !ok {
				c = elbBuckets[key]
			}
			b = &bucket{capacity: c[0], rate: c[1], tokens: c[0], last: now}
			s.buckets[key] = b
		}
		return b
	}
	acct, cat := get(ELBv2BucketAccount), get(category)
	if !acct.peek(now) || !cat.peek(now) {
		return false
	}
	acct.tokens--
	cat.tokens--
	return true
}

// elbResources lists the ARNs a request acts on: the load balancer, target
// group, listener or tagged resources it names; a create acts on the ARN of
// what it makes (with "new" for the ID AWS has not chosen yet), as IAM's
// resource-level permissions for ELBv2 creates do; describes act on "*".
func elbResources(action string, p *params, region, account string) []string {
	if strings.HasPrefix(action, "Describe") {
		return []string{"*"}
	}
	prefix := "arn:aws:elasticloadbalancing:" + region + ":" + account + ":"
	switch action {
	case "CreateLoadBalancer":
		kind := "net"
		if t := p.get("Type"); t == "application" {
			kind = "app"
		} else if t == "gateway" {
			kind = "gwy"
		}
		return []string{prefix + "loadbalancer/" + kind + "/" + p.get("Name") + "/new"}
	case "CreateTargetGroup":
		return []string{prefix + "targetgroup/" + p.get("Name") + "/new"}
	}
	var out []string
	for _, k := range []string{"LoadBalancerArn", "TargetGroupArn", "ListenerArn"} {
		if v := p.get(k); v != "" {
			out = append(out, v)
		}
	}
	out = append(out, p.list("ResourceArns.member")...)
	if len(out) == 0 {
		out = []string{"*"}
	}
	return out
}

// elbCheckKnown rejects parameters the action does not define.
func (p *params) elbCheckKnown(allowed []string) *apiError {
	for k := range p.v {
		if k == "Action" || k == "Version" || strings.HasPrefix(k, "X-Amz-") {
			continue
		}
		sh := shape(k)
		if slices.Contains(allowed, sh) {
			continue
		}
		bare := false
		for _, a := range allowed {
			if strings.HasPrefix(a, sh+".member.") {
				bare = true
				break
			}
		}
		if !bare {
			return validation("ec2sim does not support the parameter %s", k)
		}
		if p.v[k][0] != "" {
			return validation("The list %s must be given as %s.member.N", k, k)
		}
	}
	return nil
}

func elbErrf(code, format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, code, format, args...)
}

func validation(format string, args ...any) *apiError {
	return elbErrf("ValidationError", format, args...)
}

// members returns the 1-based indexes N present as prefix.member.N[.…], sorted.
func (p *params) members(prefix string) []int {
	seen := map[int]bool{}
	for k := range p.v {
		rest, ok := strings.CutPrefix(k, prefix+".member.")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if !isIndex(idx) {
			continue
		}
		n, _ := strconv.Atoi(idx)
		seen[n] = true
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// field returns prefix.member.N.name.
func (p *params) field(prefix string, n int, name string) (string, bool) {
	k := prefix + ".member." + strconv.Itoa(n) + "." + name
	v, ok := p.v[k]
	if !ok {
		return "", false
	}
	return v[0], true
}

// elbInt parses an optional integer parameter in [lo, hi].
func (p *params) elbInt(key string, lo, hi int) (int, bool, *apiError) {
	s, ok := p.v[key]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.Atoi(s[0])
	if err != nil || n < lo || n > hi {
		return 0, true, validation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have value between %d and %d",
			s[0], lowerFirst(key), lo, hi)
	}
	return n, true, nil
}

func (p *params) elbBool(key string) (bool, bool, *apiError) {
	s, ok := p.v[key]
	if !ok {
		return false, false, nil
	}
	switch s[0] {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, true, validation("Invalid value '%s' for %s: must be true or false", s[0], key)
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// elbTag is one Key/Value of Tags.member.N.
type elbTag struct{ key, value string }

// tags parses and validates Tags.member.N.{Key,Value}.
func (p *params) elbTags() ([]elbTag, *apiError) {
	var out []elbTag
	seen := map[string]bool{}
	for _, n := range p.members("Tags") {
		k, ok := p.field("Tags", n, "Key")
		if !ok || k == "" {
			return nil, validation("A tag key must be specified")
		}
		v, _ := p.field("Tags", n, "Value")
		if len(k) > 128 || len(v) > 256 {
			return nil, validation("Tag key must be at most 128 and tag value at most 256 characters long")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, validation("Tag keys starting with 'aws:' are reserved for internal use")
		}
		if seen[k] {
			return nil, elbErrf("DuplicateTagKeys", "Tag key '%s' was specified more than once", k)
		}
		seen[k] = true
		out = append(out, elbTag{k, v})
	}
	return out, nil
}

// maxELBTags is AWS's limit of tags per resource.
const maxELBTags = 50

func applyTags(dst map[string]string, tags []elbTag) *apiError {
	n := len(dst)
	for _, t := range tags {
		if _, ok := dst[t.key]; !ok {
			n++
		}
	}
	if n > maxELBTags {
		return elbErrf("TooManyTags", "You've reached the limit on the number of tags for this resource (%d)", maxELBTags)
	}
	for _, t := range tags {
		dst[t.key] = t.value
	}
	return nil
}

// paging of ELBv2 describes: PageSize 1..400 and an opaque Marker bound to
// the rest of the request.
func (p *params) elbPaging(action string) (paging, *apiError) {
	keys := make([]string, 0, len(p.v))
	for k := range p.v {
		if k != "Marker" && k != "PageSize" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var fp strings.Builder
	fp.WriteString(action)
	for _, k := range keys {
		fmt.Fprintf(&fp, "\x00%s=%s", k, p.v[k][0])
	}
	pg := paging{fp: strconv.FormatUint(uint64(fnvString(fp.String())), 36)}
	n, ok, err := p.elbInt("PageSize", 1, 400)
	if err != nil {
		return pg, err
	}
	if ok {
		pg.max, pg.used = n, true
	}
	if m, ok := p.v["Marker"]; ok {
		after, ok := decodeToken(m[0], pg.fp)
		if !ok {
			return pg, validation("The marker '%s' is not valid", m[0])
		}
		pg.after, pg.used = after, true
	}
	return pg, nil
}

func fnvString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// nextMarker writes NextMarker when a page is cut short.
func (c *elbCtx) nextMarker(tok string) {
	if tok != "" {
		c.x.el("NextMarker", tok)
	}
}
