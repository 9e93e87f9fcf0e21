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

package main

import (
	"testing"
	"time"
)

// slowAt gives worker i of ws one slow request from start to start+d.
func slowAt(ws []*loadWorker, i int, start, d time.Duration) {
	ws[i].slow = append(ws[i].slow, span{start: int64(start), end: int64(start + d)})
}

func TestStalledTellsStallsFromSlowAnswers(t *testing.T) {
	const conns = 16
	workers := func() []*loadWorker {
		ws := make([]*loadWorker, conns)
		for i := range ws {
			ws[i] = &loadWorker{}
		}
		return ws
	}
	ms := time.Millisecond

	// Eight connections slow at once (the server off the CPU for a tick),
	// then four slow on their own, far apart: 8 of the 12 in a stall.
	ws := workers()
	for i := range 8 {
		slowAt(ws, i, 100*ms+time.Duration(i)*50*time.Microsecond, 4*ms)
	}
	for i := range 4 {
		slowAt(ws, 8+i, time.Duration(200+50*i)*ms, 4*ms)
	}
	if got, want := stalled(ws, conns), 8.0/12; got != want {
		t.Errorf("stalled = %.3f, want %.3f (8 of 12 slow requests together)", got, want)
	}

	// Seven at once is fewer than half the connections: not a stall.
	ws = workers()
	for i := range 7 {
		slowAt(ws, i, 100*ms, 4*ms)
	}
	if got := stalled(ws, conns); got != 0 {
		t.Errorf("stalled = %.3f with 7 of 16 connections slow together, want 0", got)
	}

	// Requests slow one after another on every connection never overlap.
	ws = workers()
	for i := range conns {
		slowAt(ws, i, time.Duration(i)*5*ms, 4*ms)
	}
	if got := stalled(ws, conns); got != 0 {
		t.Errorf("stalled = %.3f with no two slow requests together, want 0", got)
	}

	if got := stalled(workers(), conns); got != 0 {
		t.Errorf("stalled = %.3f with no slow request, want 0", got)
	}
}
