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

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Echoed is what an Echo server answers: the request it received.
type Echoed struct {
	Method  string      `json:"method"`
	URI     string      `json:"uri"`
	Host    string      `json:"host"`
	Headers http.Header `json:"headers"`
	Body    string      `json:"body"`
}

// Echo starts an upstream that answers every request with 200 and a JSON
// Echoed of the method, request URI, Host, headers and body it received, so
// that tests can assert what reached the backend through nginx. It is closed
// in t.Cleanup.
func Echo(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Echoed{
			Method:  r.Method,
			URI:     r.RequestURI,
			Host:    r.Host,
			Headers: r.Header,
			Body:    string(body),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// DecodeEcho reads an Echo server's answer from r.
func DecodeEcho(r io.Reader) (Echoed, error) {
	var e Echoed
	err := json.NewDecoder(r).Decode(&e)
	return e, err
}
