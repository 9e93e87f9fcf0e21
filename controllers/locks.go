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
	"sync"
)

// keyedMutex serialises work on one name (an application, a key group)
// across a controller's workers. With leader election there is one manager
// at a time, so this makes each limit decision a single writer's.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	waiters int
}

func newKeyedMutex() *keyedMutex {
	return &keyedMutex{locks: map[string]*keyedLock{}}
}

// Lock locks name and returns the function that unlocks it.
func (m *keyedMutex) Lock(name string) (unlock func()) {
	m.mu.Lock()
	l, ok := m.locks[name]
	if !ok {
		l = &keyedLock{}
		m.locks[name] = l
	}
	l.waiters++
	m.mu.Unlock()

	l.Lock()
	return func() {
		l.Unlock()
		m.mu.Lock()
		l.waiters--
		if l.waiters == 0 {
			delete(m.locks, name)
		}
		m.mu.Unlock()
	}
}
