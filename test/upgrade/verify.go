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

package upgrade

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// verifierReplica is one verifier answering external-auth calls: the old
// release's process or the new one.
type verifierReplica struct {
	name string
	base string // http://host:port
}

// call is an external-auth call as ingress-nginx makes it: the request it
// judges, from a client address, with a key.
type call struct {
	method, path string
	clientIP     string
}

// answer is what a verifier said.
type answer struct {
	code   int
	reason string // X-Auth-Reason
	keyID  string // X-Auth-Key
}

func (a answer) String() string {
	return fmt.Sprintf("%d reason=%q key=%q", a.code, a.reason, a.keyID)
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// ask makes the call to the verifier for the key group ns/group.
func (v verifierReplica) ask(ns, group string, c call, key string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, v.base+"/v1/verify/"+ns+"/"+group, nil)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Original-Method", c.method)
	req.Header.Set("X-Original-URL", "https://api.example.com"+c.path)
	if c.clientIP != "" {
		req.Header.Set("X-Real-IP", c.clientIP)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s verifier: %w", v.name, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return answer{code: resp.StatusCode, reason: resp.Header.Get("X-Auth-Reason"), keyID: resp.Header.Get("X-Auth-Key")}, nil
}
