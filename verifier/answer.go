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

package verifier

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Reason is why a request was answered as it was; it is the X-Auth-Reason
// header of a refusal and a label of the request metric.
type Reason uint8

// The reasons, as DESIGN §4 lists them.
const (
	ReasonOK Reason = iota
	ReasonMissing
	ReasonMalformed
	ReasonUnknown
	ReasonExpired
	ReasonRevoked
	ReasonDisabled
	ReasonScope
	ReasonSource
	ReasonPath
	numReasons
)

var reasonNames = [numReasons]string{"ok", "missing", "malformed", "unknown", "expired", "revoked", "disabled", "scope", "source", "path"}

func (r Reason) String() string { return reasonNames[r] }

// answer is a refusal, prepared once: status, header value and JSON body.
type answerText struct {
	status int
	header []string
	body   []byte
	length []string
}

var answers = func() [numReasons]answerText {
	messages := [numReasons]struct {
		status  int
		message string
	}{
		ReasonOK:        {http.StatusOK, ""},
		ReasonMissing:   {http.StatusUnauthorized, "no API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"},
		ReasonMalformed: {http.StatusUnauthorized, "the API key is malformed or its checksum is wrong"},
		ReasonUnknown:   {http.StatusUnauthorized, "the API key is not valid for this API"},
		ReasonExpired:   {http.StatusUnauthorized, "the API key has expired"},
		ReasonRevoked:   {http.StatusUnauthorized, "the API key has been revoked"},
		ReasonDisabled:  {http.StatusUnauthorized, "the API key is disabled"},
		ReasonScope:     {http.StatusForbidden, "the API key's scopes do not cover this method and path"},
		ReasonSource:    {http.StatusForbidden, "the API key may not be used from this address"},
		ReasonPath:      {http.StatusForbidden, "the request path cannot be verified safely"},
	}
	var out [numReasons]answerText
	for r, m := range messages {
		body, _ := json.Marshal(map[string]string{"reason": reasonNames[r], "message": m.message})
		body = append(body, '\n')
		out[r] = answerText{status: m.status, header: []string{reasonNames[r]}, body: body, length: []string{strconv.Itoa(len(body))}}
	}
	return out
}()

var (
	zeroLength = []string{"0"}
	jsonType   = []string{"application/json"}
	noStore    = []string{"no-store"}
)
