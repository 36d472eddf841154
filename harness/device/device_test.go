package device_test

import (
	"testing"

	"github.com/critlab/critlab/harness/device"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"", "cpu", true}, {"cpu", "cpu", true}, {"cuda", "cuda:0", true},
		{"cuda:1", "cuda:1", true}, {"cuda:x", "", false}, {"tpu", "", false},
	}
	for _, tc := range tests {
		d, err := device.Parse(tc.in)
		if (err == nil) != tc.ok || (tc.ok && d.String() != tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %q ok=%v", tc.in, d, err, tc.want, tc.ok)
		}
	}
}
