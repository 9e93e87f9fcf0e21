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

package testenv

import (
	"errors"
	"io"
	"net"
	neturl "net/url"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// Outage is a TCP proxy in front of the API server that a test can cut and
// restore, to show what a component does when the API server goes away:
// every open connection (watches included) is dropped and new ones are
// refused until Restore. The API server itself keeps running, so the test
// can change things "meanwhile" through its own client.
type Outage struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// NewOutage starts a proxy to the API server and returns it with a config
// that reaches the API server through it.
func (e *Env) NewOutage(t testing.TB) (*Outage, *rest.Config) {
	t.Helper()
	u, err := url(e.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	o := &Outage{target: u, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	o.serve(ln)
	t.Cleanup(o.Cut)
	cfg := rest.CopyConfig(e.Config)
	cfg.Host = "https://" + o.addr
	return o, cfg
}

// url returns the host:port of an API server URL such as
// https://127.0.0.1:6443/.
func url(host string) (string, error) {
	u, err := neturl.Parse(host)
	if err != nil {
		return "", err
	}
	if u.Host == "" {
		return "", errors.New("testenv: no API server host in " + host)
	}
	return u.Host, nil
}

func (o *Outage) serve(ln net.Listener) {
	o.mu.Lock()
	o.ln = ln
	o.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go o.pipe(c)
		}
	}()
}

func (o *Outage) pipe(c net.Conn) {
	up, err := net.Dial("tcp", o.target)
	if err != nil {
		_ = c.Close()
		return
	}
	o.mu.Lock()
	if o.ln == nil {
		o.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	o.conns[c], o.conns[up] = struct{}{}, struct{}{}
	o.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
	o.mu.Lock()
	delete(o.conns, c)
	delete(o.conns, up)
	o.mu.Unlock()
}

// Cut drops every connection and refuses new ones.
func (o *Outage) Cut() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil {
		_ = o.ln.Close()
		o.ln = nil
	}
	for c := range o.conns {
		_ = c.Close()
	}
}

// Restore accepts connections again, on the same address.
func (o *Outage) Restore() error {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	o.serve(ln)
	return nil
}
