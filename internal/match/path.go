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
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxPathLength is the longest path, in bytes and before decoding (the query
// excluded), that NormalizePath accepts.
const MaxPathLength = 8 << 10

// ErrUnsafePath is returned for a request path that cannot be normalised
// safely; the request must be denied.
var ErrUnsafePath = errors.New("match: unsafe request path")

// byte classes used while scanning and decoding.
const (
	clsPlain   = iota // ordinary path byte
	clsBad            // refused whether literal or decoded
	clsPercent        // '%'
	clsSlash          // '/'
	clsHash           // '#': refused literal, allowed decoded
	clsHigh           // >= 0x80: needs UTF-8 validation
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = clsBad
	}
	t[0x7f] = clsBad
	t['\\'] = clsBad
	t[';'] = clsBad
	t['%'] = clsPercent
	t['/'] = clsSlash
	t['#'] = clsHash
	for c := 0x80; c < 0x100; c++ {
		t[c] = clsHigh
	}
	return t
}()

// PathFromURL returns the normalised path of a request URI that may be
// absolute ("https://host/a/b?x=1", as ingress-nginx's X-Original-URL) or a
// plain path with an optional query (X-Original-URI, X-Forwarded-Uri, an
// Envoy :path). The scheme and authority are stripped when present, then
// the result is handed to NormalizePath, which ignores the query.
//
// An absolute URL's authority ends only at the first '/', and every byte
// of it must be an RFC 3986 authority character (see authorityChar): a
// '?', '#', '\', blank, control or non-ASCII byte there is ErrUnsafePath.
// The proxy builds such a URL from the client's Host header
// ($scheme://$http_host$request_uri), so ending the authority anywhere
// else would let the client choose the path judged ("Host: a:?" would make
// "http://a:?/admin" judge "/"). An absolute URL without a path ("http://host",
// "http://host?x") is refused too: nginx's $request_uri always starts with
// '/', so only a forged header can lack one.
func PathFromURL(raw string) (string, error) {
	p, err := stripSchemeHost(raw)
	if err != nil {
		return "", err
	}
	return NormalizePath(p)
}

// authorityChar holds the bytes RFC 3986 allows in an authority
// (userinfo "@" host ":" port): unreserved (ALPHA DIGIT - . _ ~), '%' of
// pct-encoded, sub-delims (! $ & ' ( ) * + , ; =), ':', '@', and '[' ']'
// of an IP literal.
var authorityChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~%!$&'()*+,;=:@[]" {
		t[c] = true
	}
	return t
}()

// stripSchemeHost returns raw without a leading "scheme://authority".
// Input that starts with "/" (including "//x", a path with an empty first
// segment in a request target) is returned unchanged, as is "".
func stripSchemeHost(raw string) (string, error) {
	if raw == "" || raw[0] == '/' {
		return raw, nil
	}
	// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
	i := 0
	for ; i < len(raw); i++ {
		c := raw[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			continue
		}
		if i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			continue
		}
		break
	}
	if i == 0 || !strings.HasPrefix(raw[i:], "://") {
		return "", ErrUnsafePath
	}
	rest := raw[i+3:]
	for j := 0; j < len(rest); j++ {
		c := rest[j]
		if c == '/' {
			return rest[j:], nil
		}
		if !authorityChar[c] {
			return "", ErrUnsafePath
		}
	}
	return "", ErrUnsafePath // no path
}

// NormalizePath returns the path of raw (a request path with an optional
// query, which is ignored) percent-decoded once, with dot segments resolved
// and slashes collapsed, or ErrUnsafePath; see the package documentation
// for the exact rules. An empty input yields "/"; a non-empty input whose
// path part is empty ("?x") is refused.
//
// A path that needs no change (no '%', no "//", no "." or ".." segment) is
// returned as a substring of raw without allocating; otherwise the result
// costs one allocation (two for paths longer than 512 bytes).
func NormalizePath(raw string) (string, error) {
	p := raw
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if len(p) > MaxPathLength {
		return "", ErrUnsafePath
	}
	if p == "" && raw == "" {
		return "/", nil
	}
	if p == "" || p[0] != '/' {
		return "", ErrUnsafePath
	}
	high := false
	for i := 0; i < len(p); i++ {
		switch byteClass[p[i]] {
		case clsPlain:
		case clsSlash:
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.' && isDotSegment(p[i+1:])) {
				return normalizeSlow(p)
			}
		case clsPercent:
			return normalizeSlow(p)
		case clsHigh:
			high = true
		default: // clsBad, clsHash
			return "", ErrUnsafePath
		}
	}
	if high && !utf8.ValidString(p) {
		return "", ErrUnsafePath
	}
	return p, nil
}

// isDotSegment reports whether s (starting at a segment) begins with a
// "." or ".." segment.
func isDotSegment(s string) bool {
	switch {
	case len(s) == 0 || s[0] != '.':
		return false
	case len(s) == 1 || s[1] == '/':
		return true
	case s[1] != '.':
		return false
	default:
		return len(s) == 2 || s[2] == '/'
	}
}

// normalizeSlow decodes and resolves p, which starts with '/'. It validates
// everything itself; NormalizePath only calls it early.
func normalizeSlow(p string) (string, error) {
	var stack [512]byte
	out := stack[:0]
	dirEnd := false // the result must end with '/'
	for i := 1; ; {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p)
		} else {
			j += i
		}
		mark := len(out)
		out = append(out, '/')
		var ok bool
		if out, ok = appendDecoded(out, p[i:j]); !ok {
			return "", ErrUnsafePath
		}
		seg := out[mark+1:]
		if dot := len(seg) == 1 && seg[0] == '.' || len(seg) == 2 && seg[0] == '.' && seg[1] == '.'; dot && strings.IndexByte(p[i:j], '%') >= 0 {
			// A dot segment only once decoded ("%2e%2e"): an upstream
			// that routes on the path as sent sees no dot segment there,
			// and would serve another path than the one judged.
			return "", ErrUnsafePath
		}
		switch {
		case len(seg) == 0 || len(seg) == 1 && seg[0] == '.':
			out = out[:mark]
			dirEnd = true
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if mark == 0 {
				return "", ErrUnsafePath // would escape above the root
			}
			out = out[:bytes.LastIndexByte(out[:mark], '/')]
			dirEnd = true
		default:
			dirEnd = false
		}
		if j >= len(p) {
			break
		}
		i = j + 1
	}
	if dirEnd || len(out) == 0 {
		out = append(out, '/')
	}
	if !utf8.Valid(out) {
		return "", ErrUnsafePath
	}
	return string(out), nil
}

// appendDecoded appends the percent-decoding of the raw segment s to out,
// refusing bad bytes (literal or decoded), encoded slashes, literal '#',
// invalid escapes and double encoding.
func appendDecoded(out []byte, s string) ([]byte, bool) {
	mark := len(out)
	percent := false // a '%' was decoded: look for double encoding
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch byteClass[c] {
		case clsPlain, clsHigh:
		case clsPercent:
			if i+2 >= len(s) {
				return out, false
			}
			hi, lo := unhex(s[i+1]), unhex(s[i+2])
			if hi > 0xf || lo > 0xf {
				return out, false
			}
			c = hi<<4 | lo
			i += 2
			if cls := byteClass[c]; cls == clsBad || cls == clsSlash {
				return out, false
			}
			percent = percent || c == '%'
		default: // clsBad, clsHash ('/' never occurs inside a segment)
			return out, false
		}
		out = append(out, c)
	}
	return out, !percent || !doubleEncoded(out[mark:])
}

// doubleEncoded reports whether the decoded segment seg holds a '%'
// followed by two hex digits ("%2541" and "%25%34%31" both decode to
// "%41"): a backend that decodes again would see another path than the
// one matched. Every '%' in seg was decoded from "%25": a literal one
// always starts an escape.
func doubleEncoded(seg []byte) bool {
	for i := 0; i+2 < len(seg); i++ {
		if seg[i] == '%' && unhex(seg[i+1]) <= 0xf && unhex(seg[i+2]) <= 0xf {
			return true
		}
	}
	return false
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}
