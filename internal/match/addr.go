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
	"net/netip"
	"strings"
)

// prefixList is a list of masked, unmapped prefixes.
type prefixList []netip.Prefix

// parsePrefixes parses CIDR strings: CIDR notation is required, surrounding
// blanks are trimmed, empty entries are refused, non-canonical prefixes are
// masked and IPv4-mapped IPv6 prefixes are converted to IPv4.
func parsePrefixes(what string, cidrs []string) (prefixList, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	out := make(prefixList, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(trimBlank(c))
		if err != nil {
			return nil, fmt.Errorf("match: invalid %s entry %q: want CIDR notation such as 10.0.0.0/8 or fd00::/8", what, c)
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("match: invalid %s entry %q: IPv4-mapped prefix shorter than /96", what, c)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (l prefixList) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l prefixList) strings() []string {
	s := make([]string, len(l))
	for i, p := range l {
		s[i] = p.String()
	}
	return s
}

// TrustedProxies is the set of peer prefixes (--trusted-proxies) whose
// X-Real-IP and X-Forwarded-For headers are believed. A nil or empty
// TrustedProxies trusts nobody.
type TrustedProxies struct {
	prefixes prefixList
}

// ParseTrustedProxies parses CIDRs such as "10.0.0.0/8" or "fd00::/8". Bare
// IPs and empty entries are errors naming the entry; "10.0.0.1/8" is
// accepted and masked to "10.0.0.0/8".
func ParseTrustedProxies(cidrs []string) (*TrustedProxies, error) {
	l, err := parsePrefixes("trusted proxy", cidrs)
	if err != nil {
		return nil, err
	}
	return &TrustedProxies{prefixes: l}, nil
}

// Trusts reports whether a (unmapped, zone ignored) is a trusted proxy.
func (t *TrustedProxies) Trusts(a netip.Addr) bool {
	return t != nil && t.prefixes.contains(a)
}

// Prefixes returns the (masked) trusted prefixes as strings.
func (t *TrustedProxies) Prefixes() []string {
	if t == nil {
		return nil
	}
	return t.prefixes.strings()
}

// ClientAddr returns the client address of a request. remoteAddr is the
// connecting peer ("host:port", "[v6]:port" or a bare IP). When the peer is
// a trusted proxy the result is X-Real-IP when it is sent, else the nearest
// untrusted X-Forwarded-For hop (the nearest hop when all are trusted); in
// every other case (untrusted peer, headers absent, a garbage hop) it is
// the peer's own address. Addresses are returned unmapped
// ("::ffff:1.2.3.4" is 1.2.3.4) and without zone. ok is false only when the
// address that would be used does not parse, which includes an unparseable
// peer (headers are never believed from a peer whose address is unknown)
// and an X-Real-IP that a trusted proxy sent but that is no address (or
// two header lines of it, joined).
//
// Each proxy appends the peer it saw to X-Forwarded-For, and the client
// writes whatever it likes at the left. So the list is read from the right:
// past the hops that are trusted proxies, the first address is the client as
// the nearest proxy saw it. When every hop is a trusted proxy, the nearest
// one is used: the hops to its left may have been written by a client
// inside the trusted ranges. A hop that does not parse ends the walk, and
// the peer is used.
func (t *TrustedProxies) ClientAddr(remoteAddr string, xRealIP, xForwardedFor string) (netip.Addr, bool) {
	peer, ok := parseAddr(remoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !t.Trusts(peer) {
		return peer, true
	}
	if trimBlank(xRealIP) != "" {
		// A trusted proxy that sends X-Real-IP names the client there;
		// one that does not parse is refused, not passed over for
		// X-Forwarded-For, which the client writes the left of.
		return parseAddr(xRealIP)
	}
	var nearest netip.Addr
	for rest := xForwardedFor; rest != ""; {
		hop := rest
		if i := strings.LastIndexByte(rest, ','); i >= 0 {
			hop, rest = rest[i+1:], rest[:i]
		} else {
			rest = ""
		}
		a, ok := parseAddr(hop)
		if !ok {
			return peer, true
		}
		if !t.Trusts(a) {
			return a, true
		}
		if !nearest.IsValid() {
			nearest = a
		}
	}
	if nearest.IsValid() {
		return nearest, true
	}
	return peer, true
}

// parseAddr parses an IP, "ip:port", "[ip]:port" or "[ip]" (blanks
// trimmed), returning it unmapped and without zone. It picks the parser from
// the shape of s so that well-formed input never builds an error value.
func parseAddr(s string) (netip.Addr, bool) {
	s = trimBlank(s)
	if s == "" {
		return netip.Addr{}, false
	}
	var a netip.Addr
	switch {
	case s[0] == '[':
		if s[len(s)-1] == ']' {
			var err error
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
			break
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	case strings.IndexByte(s, ':') >= 0 && strings.IndexByte(s, ':') == strings.LastIndexByte(s, ':'):
		// exactly one colon: IPv4 with a port.
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	default:
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}

// SourceRanges is an allow-list of client prefixes. The zero value (and the
// result of parsing an empty list) is empty, which by policy allows every
// client: see Allows.
type SourceRanges struct {
	prefixes prefixList
}

// ParseSourceRanges parses CIDRs with the same rules as ParseTrustedProxies:
// CIDR notation required (a bare IP is an error), non-canonical prefixes
// masked ("10.0.0.1/8" is "10.0.0.0/8"), empty entries refused.
func ParseSourceRanges(cidrs []string) (SourceRanges, error) {
	l, err := parsePrefixes("source range", cidrs)
	if err != nil {
		return SourceRanges{}, err
	}
	return SourceRanges{prefixes: l}, nil
}

// Empty reports whether the set has no prefix (meaning: no restriction).
func (s SourceRanges) Empty() bool { return len(s.prefixes) == 0 }

// Contains reports whether a (unmapped, zone ignored) is in one of the
// prefixes. It is pure membership: an empty set contains nothing, and an
// invalid address is never contained. Use Allows for the policy decision.
func (s SourceRanges) Contains(a netip.Addr) bool { return s.prefixes.contains(a) }

// Allows is the policy decision: true when the set is empty (no
// restriction) or contains a.
func (s SourceRanges) Allows(a netip.Addr) bool { return s.Empty() || s.Contains(a) }

// Prefixes returns the (masked) prefixes as strings.
func (s SourceRanges) Prefixes() []string { return s.prefixes.strings() }

// SourceRangesOf builds SourceRanges from parsed prefixes (such as those of a
// verification record), masking each.
func SourceRangesOf(prefixes []netip.Prefix) SourceRanges {
	l := make(prefixList, 0, len(prefixes))
	for _, p := range prefixes {
		l = append(l, p.Masked())
	}
	return SourceRanges{prefixes: l}
}
