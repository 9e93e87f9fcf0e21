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

// Package match holds the pure, allocation-conscious logic the keyward
// verifier runs on every external-auth subrequest: request path
// normalisation, scope matching, credential extraction and client address
// resolution.
//
// # Paths
//
// The path a scope is matched against is the request path percent-decoded
// exactly once, with "." and ".." segments resolved and runs of slashes
// collapsed; the query string is ignored. Anything that cannot be
// normalised without guessing how the backend will interpret it is refused
// with [ErrUnsafePath] (the verifier must then deny the request):
//
//   - an encoded slash (%2F) or backslash (%5C), a literal backslash;
//   - NUL and every other control character (< 0x20, 0x7f), literal or
//     encoded;
//   - ';' literal or encoded (%3B): path parameters are matched literally by
//     this package, but Tomcat, Spring and Jetty strip them, so a backend
//     may route "/admin;x" (or "/a/..;/admin") differently from what was
//     matched; refusing is the only safe choice;
//   - a literal '#' before the query: a request target never contains a
//     fragment, and backends disagree on whether "#" ends the path
//     ("/ok#/../../admin"), so it is refused rather than stripped
//     (a '#' inside the query is ignored with the query);
//   - a ".." that would climb above the root;
//   - invalid percent-encoding ("%zz", a truncated "%4");
//   - bytes that are not valid UTF-8 after decoding (this also refuses
//     overlong encodings such as "%C0%AE");
//   - a path that does not start with "/" and paths longer than
//     [MaxPathLength] bytes;
//   - double encoding: a '%' produced by decoding and followed by two hex
//     digits ("%2541", "%252e%252e", "%25%34%31"), which a backend that
//     decodes again would read as another path than the one matched.
//
// Decoding happens once: a '%' produced by decoding is a literal percent
// sign and is never decoded again; it is allowed only where it cannot be
// read as an escape ("/100%25", "/a%25zz"). Decoded "%2e" is a dot, so
// "%2e%2e" and ".%2e" are dot segments and are resolved like "..".
//
// An absolute URL ([PathFromURL]) must have a path: its authority ends
// only at the first '/' and may hold only RFC 3986 authority characters,
// so that a client's Host header cannot move where the path starts.
//
// A trailing slash is kept ("/a/" stays "/a/", "/a//" becomes "/a/", and a
// final "." or ".." segment leaves one: "/a/b/.." is "/a/"), and case is
// preserved: matching is case-sensitive.
//
// # Scopes
//
// A rule path is either exact or ends in "/*". "/p/*" matches "/p" itself
// and every path below it on a segment boundary ("/p/", "/p/x", "/p/x/y")
// but not "/pfoo"; "/*" matches every path. Matching the bare prefix "/p"
// is deliberate: it is the collection resource the wildcard names, and the
// alternative (only "/p/...") surprises more users than it protects.
// Exact paths are compared byte for byte: "/a" does not match "/a/".
// Rule paths must already be in normalised form (no "//", no dot segments,
// no '%', '?', '#', ';' or '\'): they are compared with decoded request
// paths, so they are written decoded.
//
// Methods are compared exactly and case-sensitively (HTTP methods are
// case-sensitive); an empty method list means any method. HEAD does not
// implicitly match GET: a key that should be able to HEAD must be granted
// HEAD, because the verifier cannot know that the backend treats HEAD as a
// body-less GET.
//
// # Credentials
//
// [Credential] looks at "Authorization: Bearer <key>" (scheme
// case-insensitive), then "Authorization: rest_api_key=<key>", then the
// X-API-Key header. An Authorization header in any other form (Basic,
// Bearer without a key, a key containing blanks or control characters) is
// ignored and X-API-Key is consulted. More than one credential is refused
// ([ErrAmbiguousCredential]), never chosen from: two lines of either
// header, or the two headers carrying different keys.
//
// # Client addresses
//
// The client address is X-Real-IP, else the first X-Forwarded-For hop,
// trusted only when the connecting peer is inside a --trusted-proxies CIDR;
// otherwise it is the peer's own address. IPv4-mapped IPv6 addresses are
// unmapped and zones dropped before any comparison. CIDR lists
// ([ParseTrustedProxies], [ParseSourceRanges]) require CIDR notation (a bare
// IP is an error) and accept non-canonical prefixes such as "10.0.0.1/8",
// masking them to "10.0.0.0/8"; IPv4-mapped prefixes ("::ffff:10.0.0.0/104")
// are converted to their IPv4 form. Empty entries are errors so that a
// stray comma can never turn a source range list into "allow all".
package match
