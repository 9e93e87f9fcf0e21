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

package controllers

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"

	"github.com/keyward/keyward/internal/keys"
)

// redactKeys blanks anything shaped like a keyward key. Error text comes
// from the API server and from admission webhooks and policies of others;
// one that echoed a delivery Secret's data must not carry the plaintext
// into a status, a log line or an event.
func redactKeys(s string) string {
	s = keyShaped.ReplaceAllString(s, redacted)
	return base64Run.ReplaceAllStringFunc(s, func(run string) string {
		if holdsKey(run) {
			return redacted
		}
		return run
	})
}

var keyShaped = regexp.MustCompile(keys.Regexp)

// base64Run is a run of base64 long enough to hold a key: a Secret's data
// as JSON carries it (every key of the Secret, not only the one written),
// and so do policies that quote a request's object.
var base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{52,}={0,2}`)

// keyInside matches a key within decoded bytes, whatever is around it.
var keyInside = regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(keys.Regexp, `\b`), `\b`))

// holdsKey reports whether run, decoded as base64 from any of the four
// alignments (the run may begin with the tail of something else), holds
// something shaped like a key.
func holdsKey(run string) bool {
	run = strings.TrimRight(run, "=")
	for off := range 4 {
		if off >= len(run) {
			break
		}
		chunk := run[off:]
		if len(chunk)%4 == 1 { // no whole byte in a last lone character
			chunk = chunk[:len(chunk)-1]
		}
		b, err := base64.RawStdEncoding.DecodeString(chunk)
		if err == nil && keyInside.Match(b) {
			return true
		}
	}
	return false
}

const redacted = "[redacted key]"

// redactPlaintext replaces err when its text holds plaintext, or any key,
// as is or in base64 (redactKeys): the original, and anything that unwraps
// to it, must not reach a log or a status. plaintext is also blanked where
// it runs on from other letters, which the key pattern's word boundaries
// would not match.
func redactPlaintext(err error, plaintext string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r := redactKeys(strings.ReplaceAll(msg, plaintext, redacted)); r != msg {
		return errors.New(r)
	}
	return err
}
