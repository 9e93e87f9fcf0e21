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

package verifier_test

import (
	"bufio"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// raw sends bytes on a fresh connection and returns the status line.
func raw(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(request)); err != nil {
		return "write failed: " + err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "read failed: " + err.Error()
	}
	return strings.TrimSpace(line)
}

// TestHostileInput sends what a hostile client might, straight to the
// verifier: each is refused quickly, nothing panics, and the verifier stays
// ready and keeps answering the others.
func TestHostileInput(t *testing.T) {
	s := startStack(t, -1)
	s.setup(t)
	_, key, _ := s.issue(t, "steady")
	s.until(t, key, 200)
	addr := s.verifier.Addr
	path := "/v1/verify/" + s.ns + "/things"
	req := func(headers string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: verifier\r\nX-Original-Method: GET\r\nX-Original-URL: /v1/things/1\r\n" + headers + "\r\n"
	}

	tests := []struct {
		name    string
		request string
		want    string // status line prefix
	}{
		{"64 KiB Authorization header", req("Authorization: Bearer " + strings.Repeat("A", 64<<10) + "\r\n"), "HTTP/1.1 431"},
		{"5,000 headers", req(strings.Repeat("X-Filler: 1\r\n", 5000)), "HTTP/1.1 431"},
		{"invalid UTF-8 in the key", req("Authorization: Bearer kt_\xff\xfe\xfd" + strings.Repeat("a", 33) + "\r\n"), "HTTP/1.1 401"},
		{"invalid UTF-8 in the path", "GET " + path + " HTTP/1.1\r\nHost: v\r\nAuthorization: Bearer " + key + "\r\nX-Original-Method: GET\r\nX-Original-URL: /v1/things/\xc0\xae\xc0\xae/admin\r\n\r\n", "HTTP/1.1 403"},
		{"NUL in a header value", req("Authorization: Bearer " + key + "\x00\r\n"), "HTTP/1.1 400"},
		{"encoded NUL in the path", "GET " + path + " HTTP/1.1\r\nHost: v\r\nAuthorization: Bearer " + key + "\r\nX-Original-Method: GET\r\nX-Original-URL: /v1/things/%00\r\n\r\n", "HTTP/1.1 403"},
		{"a request line of 100 KiB", "GET " + path + "?" + strings.Repeat("q", 100<<10) + " HTTP/1.1\r\nHost: v\r\n\r\n", "HTTP/1.1 431"},
		{"not HTTP at all", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "HTTP/1.1 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got := raw(t, addr, tt.request)
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %s", got, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refused after %v; want it quick", d)
			}
		})
	}

	t.Run("slowloris", func(t *testing.T) {
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const n = 300
		var wg sync.WaitGroup
		closed := make(chan time.Duration, n)
		start := time.Now()
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: v\r\n"))
				// Trickle a header byte a second; the server must hang up.
				buf := make([]byte, 1)
				for i := 0; i < 30; i++ {
					if _, err := c.Write([]byte("X")); err != nil {
						break
					}
					_ = c.SetReadDeadline(time.Now().Add(time.Second))
					if _, err := c.Read(buf); err != nil && !isTimeout(err) {
						break
					}
				}
				closed <- time.Since(start)
			}()
		}
		// While they trickle, real requests are answered at once.
		time.Sleep(500 * time.Millisecond)
		for range 20 {
			t0 := time.Now()
			if code, _ := s.verify(t, key, "/v1/things/1"); code != 200 {
				t.Fatalf("under a slowloris crowd a valid key got %d", code)
			}
			if d := time.Since(t0); d > time.Second {
				t.Errorf("a request took %v under a slowloris crowd", d)
			}
		}
		var during runtime.MemStats
		runtime.ReadMemStats(&during)
		wg.Wait()
		close(closed)
		var last time.Duration
		for d := range closed {
			last = max(last, d)
		}
		if last > 15*time.Second {
			t.Errorf("slow connections held for %v; ReadHeaderTimeout should cut them at about 5s", last)
		}
		grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("%d slow connections dropped within %v; heap grew by %d KiB while they hung", n, last, grown/1024)
		if grown > 64<<20 {
			t.Errorf("the heap grew by %d MiB under %d slow connections", grown>>20, n)
		}
	})

	resp, err := http.Get("http://" + s.verifier.ProbeAddr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the verifier is not ready after the hostile input: %v %v", err, resp)
	}
	resp.Body.Close()
	if code, _ := s.verify(t, key, "/v1/things/1"); code != 200 {
		t.Errorf("after the hostile input a valid key got %d", code)
	}

}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
