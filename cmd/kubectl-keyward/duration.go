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
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// parseDuration reads a duration as Go does, with days too: "30d", "90d",
// "1d12h", "36h". It must be positive.
func parseDuration(s string) (time.Duration, error) {
	rest := s
	var d time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: days must be a whole number, as in 30d or 1d12h", s)
		}
		d, rest = time.Duration(n)*day, s[i+1:]
	}
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("invalid duration %q: use days and Go units, as in 30d, 1d12h or 36h", s)
		}
		d += r
	}
	if d <= 0 {
		return 0, errors.New("the duration must be positive, as in 30d")
	}
	return d, nil
}

// durationValue is a pflag.Value for parseDuration's durations.
type durationValue struct {
	d    *time.Duration
	text string
}

func newDurationValue(d *time.Duration, text string) *durationValue {
	v := &durationValue{d: d}
	if err := v.Set(text); err != nil {
		panic(err)
	}
	return v
}

func (v *durationValue) String() string { return v.text }
func (v *durationValue) Type() string   { return "duration" }

func (v *durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.d, v.text = d, s
	return nil
}
