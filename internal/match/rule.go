/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package match

import (
	"fmt"
	"strings"
)

// Rule is one compiled scope rule: paths (exact, or a "/*" suffix meaning
// that prefix on a segment boundary) and methods (empty: any). The zero Rule
// matches nothing. Build it with CompileRule.
type Rule struct {
	exact []string
	// prefixes holds "/p/" for a "/p/*" path; "/p" (the prefix without its
	// final slash) matches too.
	prefixes []string
	// anyMethod is set when no method was given.
	anyMethod bool
	// methodMask has the bit of every well-known method granted.
	methodMask uint16
	// otherMethods lists granted methods without a bit.
	otherMethods []string
}

// Scope is a named set of rules.
type Scope struct {
	Name  string
	Rules []Rule
}

// Set is the scopes granted to one key.
type Set []*Scope

// well-known methods get a bit so that matching them is a switch, not a
// loop of string comparisons.
func methodBit(m string) uint16 {
	switch m {
	case "GET":
		return 1 << 0
	case "HEAD":
		return 1 << 1
	case "POST":
		return 1 << 2
	case "PUT":
		return 1 << 3
	case "PATCH":
		return 1 << 4
	case "DELETE":
		return 1 << 5
	case "OPTIONS":
		return 1 << 6
	case "CONNECT":
		return 1 << 7
	case "TRACE":
		return 1 << 8
	}
	return 0
}

// CompileRule validates and compiles one rule.
//
// Each path must start with "/" and be in normalised form (it is compared
// with NormalizePath output, so it must be written decoded: no "//", no "."
// or ".." segment, no '%', '?', '#', ';', '\' or control character). It may
// end in "/*"; '*' is allowed nowhere else. At least one path is required.
//
// Each method must be a non-empty HTTP token without lower-case letters
// ("GET", "POST", "PURGE"); "*" is refused (an empty list already means any
// method). Methods are matched case-sensitively and HEAD does not imply GET.
func CompileRule(paths, methods []string) (Rule, error) {
	var r Rule
	if len(paths) == 0 {
		return Rule{}, fmt.Errorf("match: rule has no paths")
	}
	for _, p := range paths {
		base, wildcard := p, false
		if strings.HasSuffix(p, "/*") {
			base, wildcard = p[:len(p)-1], true
		}
		if base == "" || base[0] != '/' {
			return Rule{}, fmt.Errorf("match: rule path %q does not start with \"/\"", p)
		}
		if strings.IndexByte(base, '*') >= 0 {
			return Rule{}, fmt.Errorf("match: rule path %q: '*' is only allowed as a final \"/*\"", p)
		}
		if n, err := NormalizePath(base); err != nil || n != base {
			return Rule{}, fmt.Errorf("match: rule path %q is not in normalised form (no \"//\", \".\" or \"..\" segments, '%%', '?', '#', ';', '\\\\' or control characters)", p)
		}
		if wildcard {
			r.prefixes = append(r.prefixes, base)
		} else {
			r.exact = append(r.exact, base)
		}
	}
	r.anyMethod = len(methods) == 0
	for _, m := range methods {
		if err := validMethod(m); err != nil {
			return Rule{}, err
		}
		if b := methodBit(m); b != 0 {
			r.methodMask |= b
		} else {
			r.otherMethods = append(r.otherMethods, m)
		}
	}
	return r, nil
}

func validMethod(m string) error {
	if m == "" {
		return fmt.Errorf("match: empty rule method")
	}
	if m == "*" {
		return fmt.Errorf("match: rule method \"*\": leave the method list empty to allow any method")
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return fmt.Errorf("match: rule method %q is not an upper-case HTTP token", m)
		}
	}
	return nil
}

// Matches reports whether the rule grants method on path. path must be the
// output of NormalizePath or PathFromURL; it is not normalised here.
func (r *Rule) Matches(method, path string) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	if !r.anyMethod {
		if b := methodBit(method); b != 0 {
			if r.methodMask&b == 0 {
				return false
			}
		} else if !r.matchOtherMethod(method) {
			return false
		}
	}
	for _, e := range r.exact {
		if path == e {
			return true
		}
	}
	for _, p := range r.prefixes {
		// p is "/x/": match "/x/..." and "/x" itself.
		if strings.HasPrefix(path, p) || len(path) == len(p)-1 && path == p[:len(p)-1] {
			return true
		}
	}
	return false
}

func (r *Rule) matchOtherMethod(method string) bool {
	for _, m := range r.otherMethods {
		if m == method {
			return true
		}
	}
	return false
}

// Matches reports whether any rule of the scope grants method on path (a
// normalised path).
func (s *Scope) Matches(method, path string) bool {
	for i := range s.Rules {
		if s.Rules[i].Matches(method, path) {
			return true
		}
	}
	return false
}

// Match returns the name of the first scope in the set that grants method
// on path (a normalised path). Nil scopes are skipped.
func (s Set) Match(method, path string) (scopeName string, ok bool) {
	for _, sc := range s {
		if sc != nil && sc.Matches(method, path) {
			return sc.Name, true
		}
	}
	return "", false
}

// Any returns the name of the first of scopes that grants method on
// path (a normalised path, see NormalizePath).
func Any(scopes []*Scope, method, path string) (scopeName string, ok bool) {
	return Set(scopes).Match(method, path)
}
