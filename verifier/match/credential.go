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

import "strings"

const restAPIKeyPrefix = "rest_api_key="

// Credential extracts the API key from the Authorization and X-API-Key
// header values, in this order:
//
//  1. "Authorization: Bearer <key>" (scheme case-insensitive, separated from
//     the key by one or more spaces or tabs);
//  2. "Authorization: rest_api_key=<key>" (exact, case-sensitive prefix);
//  3. "X-API-Key: <key>".
//
// Surrounding spaces and tabs are trimmed from header values and keys. An
// Authorization header in any other form (Basic, "Bearer" without a key) is
// ignored and X-API-Key is consulted. A key must be non-empty and contain no
// space, tab or control character; a source whose key does not qualify is
// skipped. The returned key is a substring of an argument: Credential never
// allocates.
func Credential(authorization, xAPIKey string) (key string, ok bool) {
	if a := trimBlank(authorization); a != "" {
		if len(a) > len("bearer") && strings.EqualFold(a[:len("bearer")], "bearer") &&
			isBlank(a[len("bearer")]) {
			if k := trimBlank(a[len("bearer"):]); validKey(k) {
				return k, true
			}
		} else if strings.HasPrefix(a, restAPIKeyPrefix) {
			if k := trimBlank(a[len(restAPIKeyPrefix):]); validKey(k) {
				return k, true
			}
		}
	}
	if k := trimBlank(xAPIKey); validKey(k) {
		return k, true
	}
	return "", false
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
