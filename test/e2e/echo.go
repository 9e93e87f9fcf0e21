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
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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

// AnyHost starts an upstream that answers every request whose head it can
// read with 200 and the body "ok", whatever its Host, and returns its URL.
// net/http's server refuses Host headers that nginx accepts and passes on
// ("api.example.com?"), so a test of what passes nginx's auth needs this
// upstream to tell "allowed" from "refused by the backend". It stops in
// t.Cleanup.
func AnyHost(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go answerAnyHost(c)
		}
	}()
	return "http://" + l.Addr().String()
}

// answerAnyHost reads requests on c until their head ends and answers
// each with 200.
func answerAnyHost(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" || line == "\n" {
				break
			}
		}
		// nginx sends the auth location's bodyless requests and, here,
		// bodyless GETs upstream.
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}
