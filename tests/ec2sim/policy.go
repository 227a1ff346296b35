package ec2sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// policy is a parsed IAM identity policy: Allow and Deny statements over
// actions and resource ARNs. Conditions are not supported.
type policy struct {
	statements []statement
}

type statement struct {
	allow     bool
	actions   []string
	resources []string
}

// stringList accepts a JSON string or a list of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*l = many
	return nil
}

type rawStatement struct {
	Sid       string          `json:"Sid"`
	Effect    string          `json:"Effect"`
	Action    stringList      `json:"Action"`
	Resource  stringList      `json:"Resource"`
	Condition json.RawMessage `json:"Condition"`
}

// parsePolicy decodes a policy document; Statement may be one object or a list.
func parsePolicy(data []byte) (*policy, error) {
	var doc struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse policy: %w", err)
	}
	if doc.Version != "2012-10-17" {
		return nil, fmt.Errorf("parse policy: unsupported Version %q", doc.Version)
	}
	var raws []rawStatement
	if err := json.Unmarshal(doc.Statement, &raws); err != nil {
		var one rawStatement
		if err2 := json.Unmarshal(doc.Statement, &one); err2 != nil {
			return nil, fmt.Errorf("parse policy statements: %w", err)
		}
		raws = []rawStatement{one}
	}
	p := &policy{}
	var errs []error
	for i, r := range raws {
		if r.Effect != "Allow" && r.Effect != "Deny" {
			errs = append(errs, fmt.Errorf("statement %d: Effect must be Allow or Deny", i))
		}
		if len(r.Action) == 0 || len(r.Resource) == 0 {
			errs = append(errs, fmt.Errorf("statement %d: Action and Resource are required", i))
		}
		if len(r.Condition) > 0 {
			errs = append(errs, fmt.Errorf("statement %d: Condition is not supported", i))
		}
		p.statements = append(p.statements, statement{allow: r.Effect == "Allow", actions: r.Action, resources: r.Resource})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("parse policy: %w", err)
	}
	return p, nil
}

// allows applies IAM's rule: an explicit Deny wins, otherwise every resource
// needs an Allow. Action names match case-insensitively, ARNs case-sensitively.
func (p *policy) allows(action string, resources []string) bool {
	return p.allowsFull("ec2:"+action, resources)
}

// allowsFull is allows for a fully qualified action such as
// "elasticloadbalancing:CreateLoadBalancer".
func (p *policy) allowsFull(full string, resources []string) bool {
	for _, st := range p.statements {
		if !st.allow && st.matchesAction(full) && st.matchesAnyResource(resources) {
			return false
		}
	}
	for _, res := range resources {
		ok := false
		for _, st := range p.statements {
			if st.allow && st.matchesAction(full) && st.matchesAnyResource([]string{res}) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (st statement) matchesAction(full string) bool {
	for _, a := range st.actions {
		if a == "*" || globMatch(strings.ToLower(a), strings.ToLower(full)) {
			return true
		}
	}
	return false
}

func (st statement) matchesAnyResource(resources []string) bool {
	for _, pat := range st.resources {
		for _, r := range resources {
			if pat == "*" || (r != "*" && globMatch(pat, r)) {
				return true
			}
		}
	}
	return false
}

// resources lists the ARNs a request acts on; describes act on "*".
func (s *Sim) resources(action string, p *params) []string {
	arn := func(kind, id string) string {
		return "arn:aws:ec2:" + s.w.region + ":" + s.w.account + ":" + kind + "/" + id
	}
	switch action {
	case "AssignIpv6Addresses", "UnassignIpv6Addresses":
		return []string{arn("network-interface", p.get("NetworkInterfaceId"))}
	case "CreateTags", "DeleteTags":
		var out []string
		for _, id := range p.list("ResourceId") {
			kind := "instance"
			switch {
			case strings.HasPrefix(id, "subnet-"):
				kind = "subnet"
			case strings.HasPrefix(id, "vpc-"):
				kind = "vpc"
			case strings.HasPrefix(id, "eni-"):
				kind = "network-interface"
			case strings.HasPrefix(id, "sg-"):
				kind = "security-group"
			}
			out = append(out, arn(kind, id))
		}
		if len(out) == 0 {
			out = []string{"*"}
		}
		return out
	case "CreateSecurityGroup":
		// The new group and the VPC it is created in.
		out := []string{arn("security-group", "*")}
		if v := p.get("VpcId"); v != "" {
			out = append(out, arn("vpc", v))
		}
		return out
	case "DeleteSecurityGroup", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress":
		return []string{arn("security-group", p.get("GroupId"))}
	case "ModifyNetworkInterfaceAttribute":
		out := []string{arn("network-interface", p.get("NetworkInterfaceId"))}
		for _, g := range p.list("SecurityGroupId") {
			out = append(out, arn("security-group", g))
		}
		return out
	}
	return []string{"*"}
}
