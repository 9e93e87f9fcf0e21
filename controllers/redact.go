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
	return keyShaped.ReplaceAllString(s, redacted)
}

var keyShaped = regexp.MustCompile(keys.Regexp)

const redacted = "[redacted key]"

// redactPlaintext replaces err when its text holds plaintext, as is or in
// base64 (as a Secret's data is written in JSON): the original, and
// anything that unwraps to it, must not reach a log or a status.
func redactPlaintext(err error, plaintext string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	r := strings.ReplaceAll(msg, plaintext, redacted)
	r = strings.ReplaceAll(r, base64.StdEncoding.EncodeToString([]byte(plaintext)), redacted)
	if r = redactKeys(r); r != msg {
		return errors.New(r)
	}
	return err
}
