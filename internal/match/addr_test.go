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
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "fd00::/8", "::ffff:192.168.0.0/112"})
	if err != nil {
		t.Fatal(err)
	}
	const none = ""
	cases := []struct {
		tp               *TrustedProxies
		remote, xri, xff string
		want             string // none: ok=false
	}{
		// trusted peer: X-Real-IP first
		{tp, "10.1.2.3:5555", "203.0.113.7", "", "203.0.113.7"},
		{tp, "10.1.2.3:5555", "203.0.113.7", "198.51.100.1", "203.0.113.7"},
		{tp, "10.1.2.3:5555", " 203.0.113.9 ", "", "203.0.113.9"},
		{tp, "10.1.2.3:5555", "203.0.113.7:8080", "", "203.0.113.7"},
		{tp, "10.1.2.3:5555", "::ffff:203.0.113.7", "", "203.0.113.7"},
		{tp, "10.1.2.3:5555", "2001:db8::1", "", "2001:db8::1"},
		{tp, "10.1.2.3:5555", "[2001:db8::1]", "", "2001:db8::1"},
		// then the nearest untrusted X-Forwarded-For hop, from the right
		{tp, "10.1.2.3:5555", "", "198.51.100.1", "198.51.100.1"},
		{tp, "10.1.2.3:5555", "", "198.51.100.1, 10.0.0.1", "198.51.100.1"},
		{tp, "10.1.2.3:5555", "", "  198.51.100.1  ,10.0.0.1,10.0.0.2", "198.51.100.1"},
		{tp, "10.1.2.3:5555", "garbage", "198.51.100.1", none},      // X-Real-IP sent but no address: refused
		{tp, "10.1.2.3:5555", "203.0.113.7,198.51.100.1", "", none}, // two X-Real-IP lines, joined
		{tp, "10.1.2.3:5555", "", "2001:db8::2, 10.0.0.1", "2001:db8::2"},
		{tp, "10.1.2.3:5555", "", "[2001:db8::2]:1234, 10.0.0.1", "2001:db8::2"},
		{tp, "10.1.2.3:5555", "", "::ffff:198.51.100.1", "198.51.100.1"},
		{tp, "10.1.2.3:5555", "", "unknown, 198.51.100.1", "198.51.100.1"},
		{tp, "10.1.2.3:5555", "", ", 198.51.100.1", "198.51.100.1"},
		// a forged left end is not believed: the proxy appended the real peer
		{tp, "10.1.2.3:5555", "", "203.0.113.66, 198.51.100.1", "198.51.100.1"},
		{tp, "10.1.2.3:5555", "", "203.0.113.66, 198.51.100.1, 10.0.0.1", "198.51.100.1"},
		// every hop a trusted proxy: the nearest, which no client wrote
		{tp, "10.1.2.3:5555", "", "10.0.0.5, 10.0.0.1", "10.0.0.1"},
		// then the peer: a hop that does not parse ends the walk
		{tp, "10.1.2.3:5555", "", "", "10.1.2.3"},
		{tp, "10.1.2.3:5555", "  ", "garbage", "10.1.2.3"},
		{tp, "10.1.2.3:5555", "", "\t198.51.100.1\t, x", "10.1.2.3"},
		{tp, "10.1.2.3:5555", "", "198.51.100.1, 10.0.0.1, ", "10.1.2.3"},
		{tp, "10.1.2.3:5555", "", "198.51.100.1, garbage, 10.0.0.1", "10.1.2.3"},
		{tp, "10.1.2.3:5555", "1.2.3", "300.1.1.1", none},
		{tp, "10.1.2.3:5555", "", "300.1.1.1", "10.1.2.3"},
		// peer forms
		{tp, "10.1.2.3", "203.0.113.7", "", "203.0.113.7"},
		{tp, "[fd00::1]:443", "203.0.113.7", "", "203.0.113.7"},
		{tp, "fd00::1", "", "198.51.100.1", "198.51.100.1"},
		{tp, "[::ffff:10.1.2.3]:80", "203.0.113.7", "", "203.0.113.7"},
		{tp, "::ffff:10.1.2.3", "203.0.113.7", "", "203.0.113.7"},
		{tp, "192.168.4.5:1", "203.0.113.7", "", "203.0.113.7"}, // trusted via a mapped prefix
		{tp, "[fd00::1%eth0]:443", "203.0.113.7", "", "203.0.113.7"},
		// untrusted peer: headers ignored
		{tp, "192.0.2.1:1234", "203.0.113.7", "198.51.100.1", "192.0.2.1"},
		{tp, "[2001:db8::99]:443", "203.0.113.7", "", "2001:db8::99"},
		{tp, "::1", "203.0.113.7", "", "::1"},
		{tp, "[::ffff:192.0.2.1]:80", "203.0.113.7", "", "192.0.2.1"},
		{tp, "fe80::1%eth0", "203.0.113.7", "", "fe80::1"},
		{tp, "11.0.0.1:80", "203.0.113.7", "", "11.0.0.1"},
		{nil, "10.1.2.3:5555", "203.0.113.7", "198.51.100.1", "10.1.2.3"},
		{&TrustedProxies{}, "10.1.2.3:5555", "203.0.113.7", "", "10.1.2.3"},
		// unparseable peer: nothing is believed
		{tp, "", "203.0.113.7", "198.51.100.1", none},
		{tp, "@", "203.0.113.7", "", none},
		{tp, "garbage", "203.0.113.7", "", none},
		{tp, "10.1.2.3:", "203.0.113.7", "", none},
		{tp, "10.1.2.3:99999", "", "", none},
		{tp, "[10.1.2.3", "", "", none},
		{tp, "[fd00::1]:", "", "", none},
	}
	for _, tc := range cases {
		got, ok := tc.tp.ClientAddr(tc.remote, tc.xri, tc.xff)
		if tc.want == none {
			if ok {
				t.Errorf("ClientAddr(%q, %q, %q) = %v, true; want !ok", tc.remote, tc.xri, tc.xff, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("ClientAddr(%q, %q, %q) = %v, %v; want %s", tc.remote, tc.xri, tc.xff, got, ok, tc.want)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	cases := []struct {
		in      []string
		want    []string
		wantErr string // substring of the error naming the entry
	}{
		{nil, []string{}, ""},
		{[]string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}, ""},
		{[]string{" 10.0.0.0/8 ", "fd00::/8"}, []string{"10.0.0.0/8", "fd00::/8"}, ""},
		{[]string{"10.0.0.1/8"}, []string{"10.0.0.0/8"}, ""},
		{[]string{"10.0.0.1/32"}, []string{"10.0.0.1/32"}, ""},
		{[]string{"2001:db8::1/32"}, []string{"2001:db8::/32"}, ""},
		{[]string{"::ffff:10.0.0.0/104"}, []string{"10.0.0.0/8"}, ""},
		{[]string{"0.0.0.0/0", "::/0"}, []string{"0.0.0.0/0", "::/0"}, ""},
		{[]string{"10.0.0.1"}, nil, `"10.0.0.1"`},
		{[]string{"10.0.0.0/8", "fd00::1"}, nil, `"fd00::1"`},
		{[]string{"10.0.0.0/33"}, nil, `"10.0.0.0/33"`},
		{[]string{"garbage"}, nil, `"garbage"`},
		{[]string{""}, nil, `""`},
		{[]string{"10.0.0.0/8", " "}, nil, `" "`},
		{[]string{"fe80::/10%eth0"}, nil, `"fe80::/10%eth0"`},
		{[]string{"::ffff:0:0/95"}, nil, `"::ffff:0:0/95"`},
	}
	for _, tc := range cases {
		tp, err1 := ParseTrustedProxies(tc.in)
		sr, err2 := ParseSourceRanges(tc.in)
		if tc.wantErr != "" {
			for _, err := range []error{err1, err2} {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Parse(%q) error = %v, want one naming %s", tc.in, err, tc.wantErr)
				}
			}
			continue
		}
		if err1 != nil || err2 != nil {
			t.Errorf("Parse(%q) errors = %v, %v", tc.in, err1, err2)
			continue
		}
		got1, got2 := tp.Prefixes(), sr.Prefixes()
		if !reflect.DeepEqual(got1, tc.want) || !reflect.DeepEqual(got2, tc.want) {
			t.Errorf("Parse(%q) = %q, %q; want %q", tc.in, got1, got2, tc.want)
		}
	}
}

func TestSourceRanges(t *testing.T) {
	sr, err := ParseSourceRanges([]string{"192.0.2.0/24", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := ParseSourceRanges(nil)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Empty() || !empty.Empty() || !(SourceRanges{}).Empty() {
		t.Fatal("Empty() wrong")
	}
	cases := []struct {
		addr             string
		contains, allows bool
	}{
		{"192.0.2.1", true, true},
		{"192.0.2.255", true, true},
		{"192.0.3.1", false, false},
		{"::ffff:192.0.2.1", true, true},
		{"2001:db8::1", true, true},
		{"2001:db8::1%eth0", true, true},
		{"2001:db9::1", false, false},
		{"", false, false},
	}
	for _, tc := range cases {
		var a netip.Addr
		if tc.addr != "" {
			a = netip.MustParseAddr(tc.addr)
		}
		if got := sr.Contains(a); got != tc.contains {
			t.Errorf("Contains(%s) = %v, want %v", tc.addr, got, tc.contains)
		}
		if got := sr.Allows(a); got != tc.allows {
			t.Errorf("Allows(%s) = %v, want %v", tc.addr, got, tc.allows)
		}
		// The empty set contains nothing but allows everything.
		if empty.Contains(a) || !empty.Allows(a) {
			t.Errorf("empty set: Contains(%s)=%v Allows=%v", tc.addr, empty.Contains(a), empty.Allows(a))
		}
	}
}
