package cloud

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/gcfg.v1/scanner"
	"gopkg.in/gcfg.v1/token"
)

// repeats finds what gcfg would merge without a word: a section or
// [ServiceOverride "N"] subsection written more than once, and a single-valued
// key set more than once in one section, even across its repeats and even to
// the same value. Multi-valued keys (unnamed slices, as gcfg defines them:
// NodeIPFamilies) may repeat. It tokenizes with gcfg's own scanner, so
// comments, quoting, escapes and continuation lines are read as gcfg reads
// them, and matches section and key names to fileConfig's fields as gcfg does
// (ignoring case, '-' for '_'). Unknown sections and keys are left to gcfg,
// which reports them. At the first syntax error it stops and returns what it
// found so far: gcfg reports the syntax error.
func repeats(src []byte) []error {
	type setting struct {
		line  int
		blank bool
		value string
	}
	type section struct {
		name  string // as errors show it: Global, ServiceOverride "1"
		sub   bool   // a subsection: its keys' errors name it
		typ   reflect.Type
		lines []int
		keys  map[string][]setting // by field name, single-valued keys only
		order []string
	}
	var (
		sections = map[string]*section{}
		order    []string
		cur      *section
	)

	fset := token.NewFileSet()
	file := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	failed := false
	s.Init(file, src, func(token.Position, string) { failed = true }, 0)
	pos, tok, lit := s.Scan()
	next := func() {
		pos, tok, lit = s.Scan()
	}
	endOfLine := func() bool { return tok == token.EOL || tok == token.EOF || tok == token.COMMENT }

scan:
	for !failed {
		switch tok {
		case token.EOF:
			break scan
		case token.EOL, token.COMMENT:
			next()
		case token.LBRACK:
			line := fset.Position(pos).Line
			if next(); tok != token.IDENT {
				break scan
			}
			name, sub, hasSub := lit, "", false
			if next(); tok == token.STRING {
				var ok bool
				if sub, ok = unquoteGcfg(lit); !ok || sub == "" {
					break scan
				}
				hasSub = true
				next()
			}
			if tok != token.RBRACK {
				break scan
			}
			if next(); !endOfLine() || failed {
				break scan
			}
			cur = nil
			field, ok := fieldFoldType(reflect.TypeFor[fileConfig](), name)
			if !ok {
				continue // unknown: gcfg says so
			}
			var typ reflect.Type
			id, display, isSub := field.Name, field.Name, false
			switch field.Type.Kind() {
			case reflect.Struct:
				if hasSub {
					continue // [Global "x"]: unknown to gcfg
				}
				typ = field.Type
			case reflect.Map: // map[string]*struct: gcfg files [S] under ""
				typ = field.Type.Elem().Elem()
				id += "\x00" + sub
				display += " " + strconv.Quote(sub)
				isSub = true
			default:
				continue
			}
			cur = sections[id]
			if cur == nil {
				cur = &section{name: display, sub: isSub, typ: typ, keys: map[string][]setting{}}
				sections[id] = cur
				order = append(order, id)
			}
			cur.lines = append(cur.lines, line)
		case token.IDENT:
			line, name := fset.Position(pos).Line, lit
			next()
			set := setting{line: line, blank: endOfLine()}
			if !set.blank {
				if tok != token.ASSIGN {
					break scan
				}
				if next(); tok != token.STRING {
					break scan
				}
				var ok bool
				if set.value, ok = unquoteGcfg(lit); !ok {
					break scan
				}
				if next(); !endOfLine() {
					break scan
				}
			}
			if failed {
				break scan
			}
			if cur == nil {
				continue // no section, or an unknown one: gcfg reports it
			}
			field, ok := fieldFoldType(cur.typ, name)
			if !ok || field.Type.Kind() == reflect.Slice && field.Type.Name() == "" {
				continue // unknown, or multi-valued
			}
			if cur.keys[field.Name] == nil {
				cur.order = append(cur.order, field.Name)
			}
			cur.keys[field.Name] = append(cur.keys[field.Name], set)
		default:
			break scan
		}
	}

	var errs []error
	for _, id := range order {
		sec := sections[id]
		if len(sec.lines) > 1 {
			errs = append(errs, fmt.Errorf("cloud config: section [%s] written %s, on lines %s: a section may appear only once",
				sec.name, times(len(sec.lines)), listLines(sec.lines)))
		}
		prefix := ""
		if sec.sub {
			prefix = sec.name + ": "
		}
		for _, key := range sec.order {
			sets := sec.keys[key]
			if len(sets) < 2 {
				continue
			}
			vals := make([]string, len(sets))
			for i, st := range sets {
				v := strconv.Quote(st.value)
				if st.blank {
					v = "(no value)"
				}
				vals[i] = fmt.Sprintf("%s on line %d", v, st.line)
			}
			errs = append(errs, fmt.Errorf("cloud config: %s%s: set %s: %s; a single-valued key may be set only once",
				prefix, key, times(len(sets)), strings.Join(vals, ", ")))
		}
	}
	return errs
}

// fieldFoldType finds the field gcfg stores section or key name in, as
// gcfg's fieldFold does: a gcfg tag's name, else the field name, ignoring
// case, with '-' in name standing for '_'.
func fieldFoldType(t reflect.Type, name string) (reflect.StructField, bool) {
	n := strings.ReplaceAll(name, "-", "_")
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if tag, _, _ := strings.Cut(f.Tag.Get("gcfg"), ","); tag != "" {
			if strings.EqualFold(tag, name) {
				return f, true
			}
		} else if strings.EqualFold(n, f.Name) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// unquoteGcfg unquotes a literal as gcfg does: double quotes toggle quoting,
// \\, \", \n and \t are escapes, and a backslash before a newline joins
// lines. It reports false where gcfg's unquote would panic.
func unquoteGcfg(s string) (string, bool) {
	var b strings.Builder
	quoted, esc := false, false
	for _, c := range s {
		if esc {
			esc = false
			switch c {
			case '\\', '"':
				b.WriteRune(c)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\n':
				if quoted {
					return "", false
				}
			default:
				return "", false
			}
			continue
		}
		switch c {
		case '"':
			quoted = !quoted
		case '\\':
			esc = true
		default:
			b.WriteRune(c)
		}
	}
	return b.String(), !quoted && !esc
}

func times(n int) string {
	if n == 2 {
		return "twice"
	}
	return strconv.Itoa(n) + " times"
}

// listLines writes 1, 4 and 9.
func listLines(lines []int) string {
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = strconv.Itoa(l)
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
