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
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// bad marks an input that must be refused with ErrUnsafePath.
const bad = "\x00ERR"

var pathCases = []struct {
	in   string
	want string
}{
	// plain
	{"", "/"},
	{"/", "/"},
	{"/a/b", "/a/b"},
	{"/a/b/", "/a/b/"},
	{"a/b", bad},
	{"?x=1", bad},
	{"*", bad},
	// case is preserved
	{"/Admin", "/Admin"},
	{"/admin", "/admin"},
	{"/ADMIN/Users", "/ADMIN/Users"},
	// dot segments
	{"/a/../b", "/b"},
	{"/a/b/..", "/a/"},
	{"/a/b/../", "/a/"},
	{"/a/..", "/"},
	{"/..", bad},
	{"/../a", bad},
	{"/a/../../b", bad},
	{"/.", "/"},
	{"/./a", "/a"},
	{"/a/.", "/a/"},
	{"/a/./", "/a/"},
	{"/a/./b/./c", "/a/b/c"},
	{"/...", "/..."},
	{"/a/.../b", "/a/.../b"},
	{"/.a/..b/b..", "/.a/..b/b.."},
	// a dot segment only once decoded is refused: an upstream routing on
	// the path as sent ("/a/%2e%2e/b" under "/a/*") would serve another
	// path than the one judged; encoded dots elsewhere are dots
	{"/%2e%2e", bad},
	{"/a/%2e%2e/b", bad},
	{"/a/%2E%2e/b", bad},
	{"/a/%2E%2E/b", bad},
	{"/a/.%2e/b", bad},
	{"/a/%2e./b", bad},
	{"/a/%2e/b", bad},
	{"/a/b/%2e%2e/%2e%2e", bad},
	{"/a/%2e%2e%2e", "/a/..."},
	{"/a/%2ejson", "/a/.json"},
	{"/a/b%2e%2e", "/a/b.."},
	// decode once: %25 is a literal percent afterwards, refused where it
	// would read as an escape (double encoding)
	{"/%252e%252e/admin", bad},
	{"/a/%252e%252e/", bad},
	{"/a%25", "/a%"},
	{"/100%25", "/100%"},
	{"/100%25/x", "/100%/x"},
	{"/a%25zz", "/a%zz"},
	{"/a%25z1", "/a%z1"},
	{"/a%254", "/a%4"},
	{"/a%2525", bad},
	{"/a%252F", bad},
	{"/a%2541", bad},
	{"/a%25%34%31", bad},
	{"/a%25%341", bad},
	{"/a%254%31", bad},
	{"/a%25/41", "/a%/41"},
	{"/%25%25ab", bad},
	// encoded slash and backslash, literal backslash
	{"/a%2Fb", bad},
	{"/a%2fb", bad},
	{"/a/..%2f..%2fadmin", bad},
	{"/a\\b", bad},
	{"/a%5cb", bad},
	{"/a%5Cb", bad},
	{"\\a", bad},
	// slashes collapse
	{"/a//b", "/a/b"},
	{"///a", "/a"},
	{"//", "/"},
	{"/a//", "/a/"},
	{"/a/b//", "/a/b/"},
	{"//a//b//", "/a/b/"},
	// path parameters
	{"/a;b", bad},
	{"/a;", bad},
	{"/a/..;/b", bad},
	{"/a%3bb", bad},
	{"/a%3Bb", bad},
	// query strings are ignored, even when they look dangerous
	{"/a?x=/../b", "/a"},
	{"/a?x=%zz", "/a"},
	{"/a?", "/a"},
	{"/a?x;y\\z", "/a"},
	{"/a/./b?..", "/a/b"},
	// fragments: refused before the query, ignored inside it
	{"/a#frag", bad},
	{"/a#/../../b", bad},
	{"/a?x#frag", "/a"},
	{"/a%23b", "/a#b"},
	{"/a%3Fb", "/a?b"},
	// NUL and control characters
	{"/a%00", bad},
	{"/a\x00", bad},
	{"/a\tb", bad},
	{"/a%09", bad},
	{"/a\r\nb", bad},
	{"/a%0d%0a", bad},
	{"/a\x7f", bad},
	{"/a%7F", bad},
	{"/a%1f", bad},
	{"/a%20b", "/a b"},
	{"/a b", "/a b"},
	// invalid percent-encoding
	{"/a%zz", bad},
	{"/a%4", bad},
	{"/a%", bad},
	{"/a%g1", bad},
	{"/a%1g", bad},
	{"/%u002e%u002e", bad},
	// unicode
	{"/caf%C3%A9", "/café"},
	{"/café", "/café"},
	{"/%E2%82%AC/x", "/€/x"},
	{"/\xff", bad},
	{"/%ff", bad},
	{"/%C0%AE%C0%AE/admin", bad},
	{"/%c0%af", bad},
	// length
	{"/" + strings.Repeat("a", MaxPathLength-1), "/" + strings.Repeat("a", MaxPathLength-1)},
	{"/" + strings.Repeat("a", MaxPathLength), bad},
	{"/" + strings.Repeat("a", MaxPathLength-1) + "?" + strings.Repeat("q", 100), "/" + strings.Repeat("a", MaxPathLength-1)},
	{"/" + strings.Repeat("%61", 2000), "/" + strings.Repeat("a", 2000)},
	{strings.Repeat("/a", 600) + "/%2e", bad},
	{strings.Repeat("/a", 600) + "/.", strings.Repeat("/a", 600) + "/"},
	// absolute URLs (PathFromURL only): the authority ends only at the
	// first '/' and holds only RFC 3986 authority characters; a URL
	// without a path is refused (nginx's $request_uri always has one).
	{"https://host/a/b?x=1", "/a/b"},
	{"http://host", bad},
	{"http://host/", "/"},
	{"http://host?x=1", bad},
	{"http://host:8080", bad},
	{"http://api.example.com:?/admin", bad},
	{"http://api.example.com:?", bad},
	{"http://api.example.com?/admin", bad},
	{"http://api.example.com:443/admin", "/admin"},
	{"http://h%41st:1/a", "/a"},
	{"http://a-b.c_d~e!$&'()*+,;=@x:1/a", "/a"},
	{"http://ho\x7fst/a", bad},
	{"http://hé/a", bad},
	{"http://h\"/a", bad},
	{"http://h</a", bad},
	{"http://h{}/a", bad},
	{"http://h|/a", bad},
	{"http://h^/a", bad},
	{"http://h`/a", bad},
	{"http://h\t/a", bad},
	{"HTTP://Host:8080/A/./b", "/A/b"},
	{"http://user:pw@host/a", "/a"},
	{"http://[::1]:8080/a//b", "/a/b"},
	{"http:///a", "/a"},
	{"https://host/a/%2e%2e/%2e%2e", bad},
	{"https://host/%2e%2e/admin", bad},
	{"https://host//admin", "/admin"},
	{"http://host\\admin", bad},
	{"http://host\\@evil/a", bad},
	{"http://host#/admin", bad},
	{"http://ho st/a", bad},
	{"http://host\x00/a", bad},
	{"host/a", bad},
	{"://host/a", bad},
	{"1http://host/a", bad},
	{"http:/host/a", bad},
	{"svc+h2.x-y://host/a", "/a"},
}

func TestNormalizePathTable(t *testing.T) {
	for _, tc := range pathCases {
		got, err := PathFromURL(tc.in)
		check(t, "PathFromURL", tc.in, got, err, tc.want)
		if tc.in == "" || tc.in[0] == '/' {
			got, err := NormalizePath(tc.in)
			check(t, "NormalizePath", tc.in, got, err, tc.want)
			// The reference implementation must agree on every path.
			ref, ok := refNormalize(tc.in)
			if ok != (err == nil) || ok && ref != got {
				t.Errorf("refNormalize(%q) = %q, %v; NormalizePath = %q, %v", tc.in, ref, ok, got, err)
			}
		}
	}
}

func TestNormalizePathRefusesNonPaths(t *testing.T) {
	// NormalizePath does not strip hosts.
	for _, in := range []string{"http://host/a", "host", "?x", "#a", "%2fa"} {
		if got, err := NormalizePath(in); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("NormalizePath(%q) = %q, %v; want ErrUnsafePath", in, got, err)
		}
	}
}

func TestNormalizePathReturnsSubstringWhenClean(t *testing.T) {
	in := "/integration/device/abc?x=1"
	got, err := NormalizePath(in)
	if err != nil || got != "/integration/device/abc" {
		t.Fatalf("got %q, %v", got, err)
	}
	if unsafe.StringData(got) != unsafe.StringData(in) {
		t.Fatal("clean path was copied, want a substring of the input")
	}
}

func check(t *testing.T, fn, in, got string, err error, want string) {
	t.Helper()
	short := in
	if len(short) > 60 {
		short = short[:60] + "..."
	}
	if want == bad {
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s(%q) = %q, %v; want ErrUnsafePath", fn, short, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("%s(%q) = %q, %v; want %q", fn, short, got, err, want)
	}
}

// doubleEncodedRE finds, in a decoded segment, a '%' that still reads as
// an escape.
var doubleEncodedRE = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// refNormalize is a slow, obviously-written reference implementation of
// the NormalizePath contract, used as a differential oracle.
func refNormalize(raw string) (string, bool) {
	if raw == "" {
		return "/", true
	}
	p, _, _ := strings.Cut(raw, "?")
	if p == "" || p[0] != '/' || len(p) > MaxPathLength || strings.Contains(p, "#") {
		return "", false
	}
	var stack []string
	dirEnd := false
	for _, s := range strings.Split(p[1:], "/") {
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", false
		}
		if (d == "." || d == "..") && d != s {
			return "", false // a dot segment only once decoded
		}
		for i := 0; i < len(d); i++ {
			if c := d[i]; c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == ';' {
				return "", false
			}
		}
		if doubleEncodedRE.MatchString(d) {
			return "", false
		}
		switch d {
		case "", ".":
			dirEnd = true
		case "..":
			if len(stack) == 0 {
				return "", false
			}
			stack = stack[:len(stack)-1]
			dirEnd = true
		default:
			stack = append(stack, d)
			dirEnd = false
		}
	}
	out := "/" + strings.Join(stack, "/")
	if dirEnd && len(stack) > 0 {
		out += "/"
	}
	if !utf8.ValidString(out) {
		return "", false
	}
	return out, true
}
