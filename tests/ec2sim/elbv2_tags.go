package ec2sim

import (
	"maps"
	"slices"
)

// maxTagResources is AWS's limit of ResourceArns per tag call.
const maxTagResources = 20

// tagsOf resolves a load balancer, target group or listener ARN to its tags.
func (st *elbState) tagsOf(arn string) (map[string]string, *apiError) {
	switch {
	case lbARNRe.MatchString(arn):
		lb, err := st.lookupLB(arn)
		if err != nil {
			return nil, err
		}
		return lb.tags, nil
	case tgARNRe.MatchString(arn):
		tg, err := st.lookupTG(arn)
		if err != nil {
			return nil, err
		}
		return tg.tags, nil
	case listenerARNRe.MatchString(arn):
		l, err := st.lookupListener(arn)
		if err != nil {
			return nil, err
		}
		return l.tags, nil
	}
	return nil, validation("'%s' is not a valid load balancer, target group or listener ARN", arn)
}

func (c *elbCtx) resolveTagged(p *params) ([]string, []map[string]string, *apiError) {
	arns := p.list("ResourceArns.member")
	if len(arns) == 0 {
		return nil, nil, validation("At least one resource ARN must be specified")
	}
	if len(arns) > maxTagResources {
		return nil, nil, validation("1 validation error detected: Value at 'resourceArns' failed to satisfy constraint: Member must have length less than or equal to %d", maxTagResources)
	}
	ms := make([]map[string]string, len(arns))
	for i, arn := range arns {
		m, err := c.st.tagsOf(arn)
		if err != nil {
			return nil, nil, err
		}
		ms[i] = m
	}
	return arns, ms, nil
}

func addTags(c *elbCtx, p *params) *apiError {
	_, ms, err := c.resolveTagged(p)
	if err != nil {
		return err
	}
	tags, err := p.elbTags()
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return validation("At least one tag must be specified")
	}
	for _, m := range ms { // all or nothing
		if err := applyTags(maps.Clone(m), tags); err != nil {
			return err
		}
	}
	for _, m := range ms {
		_ = applyTags(m, tags)
	}
	return nil
}

func removeTags(c *elbCtx, p *params) *apiError {
	_, ms, err := c.resolveTagged(p)
	if err != nil {
		return err
	}
	keys := p.list("TagKeys.member")
	if len(keys) == 0 {
		return validation("At least one tag key must be specified")
	}
	for _, m := range ms {
		for _, k := range keys {
			delete(m, k)
		}
	}
	return nil
}

func describeTags(c *elbCtx, p *params) *apiError {
	arns, ms, err := c.resolveTagged(p)
	if err != nil {
		return err
	}
	x := c.x
	x.open("TagDescriptions")
	for i, arn := range arns {
		x.open("member")
		x.el("ResourceArn", arn)
		keys := slices.Sorted(maps.Keys(ms[i]))
		if len(keys) == 0 {
			x.WriteString("<Tags/>")
		} else {
			x.open("Tags")
			for _, k := range keys {
				x.open("member")
				x.el("Key", k)
				x.el("Value", ms[i][k])
				x.close("member")
			}
			x.close("Tags")
		}
		x.close("member")
	}
	x.close("TagDescriptions")
	return nil
}
