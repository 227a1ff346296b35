package ec2sim

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// apiError is an EC2 error reply.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badValue(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

func badCombination(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "InvalidParameterCombination", format, args...)
}

func missing(name string) *apiError {
	return errf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter %s", name)
}

// params is a parsed ec2Query request body.
type params struct {
	v url.Values
}

// parseForm parses a form-encoded body. Repeated keys are an error: the
// ec2Query serializer never sends one twice.
func parseForm(body string) (*params, *apiError) {
	v, err := url.ParseQuery(body)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "MalformedQueryString", "The query string is malformed: %v", err)
	}
	for k, vals := range v {
		if len(vals) > 1 {
			return nil, badValue("The parameter %s is given more than once", k)
		}
	}
	return &params{v: v}, nil
}

func (p *params) get(key string) string { return p.v.Get(key) }

func (p *params) has(key string) bool { _, ok := p.v[key]; return ok }

// shape replaces every list index in a key with "#": Filter.3.Value.1 ->
// Filter.#.Value.#. Indexes are 1-based without leading zeros.
func shape(key string) string {
	parts := strings.Split(key, ".")
	for i, s := range parts {
		if i > 0 && isIndex(s) {
			parts[i] = "#"
		}
	}
	return strings.Join(parts, ".")
}

func isIndex(s string) bool {
	if s == "" || len(s) > 6 || s[0] < '1' || s[0] > '9' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// alwaysAllowed are parameters every action accepts.
var alwaysAllowed = []string{"Action", "Version", "DryRun"}

// checkKnown rejects parameters the action does not define, as EC2 does.
func (p *params) checkKnown(allowed []string) *apiError {
	for k := range p.v {
		if strings.HasPrefix(k, "X-Amz-") {
			continue // query-string SigV4
		}
		sh := shape(k)
		if !slices.Contains(allowed, sh) && !slices.Contains(alwaysAllowed, sh) {
			return errf(http.StatusBadRequest, "UnknownParameter", "The parameter %s is not recognized", k)
		}
	}
	return nil
}

// list returns the values of prefix.1, prefix.2, ... in index order.
func (p *params) list(prefix string) []string {
	type iv struct {
		i int
		v string
	}
	var out []iv
	for k, vals := range p.v {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok || !isIndex(rest) {
			continue
		}
		n, _ := strconv.Atoi(rest)
		out = append(out, iv{n, vals[0]})
	}
	slices.SortFunc(out, func(a, b iv) int { return a.i - b.i })
	vals := make([]string, len(out))
	for i, x := range out {
		vals[i] = x.v
	}
	return vals
}

// intParam parses an optional integer parameter.
func (p *params) intParam(key string) (n int, ok bool, err *apiError) {
	s, ok := p.v[key]
	if !ok {
		return 0, false, nil
	}
	n, perr := strconv.Atoi(s[0])
	if perr != nil {
		return 0, true, badValue("Invalid value '%s' for %s", s[0], key)
	}
	return n, true, nil
}

func (p *params) boolParam(key string) (bool, *apiError) {
	s, ok := p.v[key]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(s[0])
	if err != nil || (s[0] != "true" && s[0] != "false") {
		return false, badValue("Invalid value '%s' for %s", s[0], key)
	}
	return b, nil
}

// filter is one Filter.N with its values.
type filter struct {
	name   string
	values []string
}

// maxFilterValues is EC2's limit of values per filter.
const maxFilterValues = 200

// filters parses Filter.N.Name / Filter.N.Value.M.
func (p *params) filters() ([]filter, *apiError) {
	byIdx := map[int]*filter{}
	for k, vals := range p.v {
		rest, ok := strings.CutPrefix(k, "Filter.")
		if !ok {
			continue
		}
		idx, field, _ := strings.Cut(rest, ".")
		if !isIndex(idx) {
			continue // checkKnown rejects it
		}
		n, _ := strconv.Atoi(idx)
		f := byIdx[n]
		if f == nil {
			f = &filter{}
			byIdx[n] = f
		}
		switch {
		case field == "Name":
			f.name = vals[0]
		case strings.HasPrefix(field, "Value."):
			// values are collected below in index order
		}
	}
	idxs := make([]int, 0, len(byIdx))
	for n := range byIdx {
		idxs = append(idxs, n)
	}
	slices.Sort(idxs)
	out := make([]filter, 0, len(idxs))
	for _, n := range idxs {
		f := byIdx[n]
		if f.name == "" {
			return nil, missing(fmt.Sprintf("Filter.%d.Name", n))
		}
		f.values = p.list(fmt.Sprintf("Filter.%d.Value", n))
		if len(f.values) == 0 {
			return nil, badValue("The filter '%s' requires at least one value", f.name)
		}
		if len(f.values) > maxFilterValues {
			return nil, badValue("The filter '%s' has too many filter values: %d (the maximum is %d)", f.name, len(f.values), maxFilterValues)
		}
		out = append(out, *f)
	}
	return out, nil
}

// globMatch matches EC2 filter wildcards: * any run, ? one character,
// backslash escapes the next character.
func globMatch(pattern, s string) bool {
	if !strings.ContainsAny(pattern, `*?\`) {
		return pattern == s
	}
	px, sx := 0, 0
	starP, starS := -1, -1
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				px++
				sx++
				continue
			case '\\':
				if px+1 == len(pattern) && s[sx] == '\\' { // trailing backslash is literal
					px++
					sx++
					continue
				}
				if px+1 < len(pattern) && pattern[px+1] == s[sx] {
					px += 2
					sx++
					continue
				}
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		px, sx = starP+1, starS
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// matchAny reports whether any field value matches any filter value.
func matchAny(f filter, fields ...string) bool {
	for _, v := range f.values {
		for _, s := range fields {
			if globMatch(v, s) {
				return true
			}
		}
	}
	return false
}
