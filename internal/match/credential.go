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
	"strings"
)

const restAPIKeyPrefix = "rest_api_key="

// Why Credential found no key. Neither error holds any of its input.
var (
	// ErrNoCredential: no header carries a key.
	ErrNoCredential = errors.New("match: no credential")
	// ErrAmbiguousCredential: more than one credential, which the verifier
	// refuses as malformed rather than choose: two Authorization lines, two
	// X-API-Key lines, or Authorization and X-API-Key carrying different
	// keys.
	ErrAmbiguousCredential = errors.New("match: more than one credential")
	// ErrMalformedCredential: a header in a credential's form whose key
	// cannot be one ("Bearer a b", "Bearer k1, Bearer k2" as a proxy joins
	// two lines, an X-API-Key with a blank inside), which the verifier
	// refuses as malformed rather than skip for another header's key.
	ErrMalformedCredential = errors.New("match: a credential that is no key")
)

// Credential extracts the API key from the lines of the Authorization and
// X-API-Key headers (as net/http holds them), in this order:
//
//  1. "Authorization: Bearer <key>" (scheme case-insensitive, separated from
//     the key by one or more spaces or tabs);
//  2. "Authorization: rest_api_key=<key>" (exact, case-sensitive prefix);
//  3. "X-API-Key: <key>".
//
// Surrounding spaces and tabs are trimmed from header values and keys. An
// Authorization header in any other form (Basic, "Bearer" without a key) is
// ignored and X-API-Key is consulted. A key must contain no space, tab or
// control character: a source that holds something else where its key
// belongs is ErrMalformedCredential, whatever the other header holds, so
// that the key judged is never one picked over an unreadable one.
//
// More than one line of either header is ErrAmbiguousCredential, whatever
// the lines hold, and so are keys in both headers unless they are the same
// key. No key at all is ErrNoCredential. The returned key is a substring of
// an argument: Credential never allocates.
func Credential(authorization, xAPIKey []string) (string, error) {
	if len(authorization) > 1 || len(xAPIKey) > 1 {
		return "", ErrAmbiguousCredential
	}
	var a, x string
	if len(authorization) == 1 {
		a = authorizationKey(authorization[0])
	}
	if len(xAPIKey) == 1 {
		x = trimBlank(xAPIKey[0])
	}
	if (a != "" && !validKey(a)) || (x != "" && !validKey(x)) {
		return "", ErrMalformedCredential
	}
	switch {
	case a != "" && x != "" && a != x:
		return "", ErrAmbiguousCredential
	case a != "":
		return a, nil
	case x != "":
		return x, nil
	}
	return "", ErrNoCredential
}

// authorizationKey is what an Authorization value in a credential's form
// holds where its key belongs, trimmed, or "" for any other form.
func authorizationKey(v string) string {
	a := trimBlank(v)
	switch {
	case len(a) > len("bearer") && strings.EqualFold(a[:len("bearer")], "bearer") && isBlank(a[len("bearer")]):
		return trimBlank(a[len("bearer"):])
	case strings.HasPrefix(a, restAPIKeyPrefix):
		return trimBlank(a[len(restAPIKeyPrefix):])
	}
	return ""
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// trimBlank trims surrounding spaces and tabs.
func trimBlank(s string) string {
	for len(s) > 0 && isBlank(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// validKey reports whether k is non-empty and free of blanks and control
// characters.
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
