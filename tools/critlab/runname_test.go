package main

import (
	"regexp"
	"testing"
)

func TestDataName(t *testing.T) {
	safe := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$`)
	for _, tc := range []struct{ spec, want string }{
		{"synthetic", "synthetic"},
		{"synthetic:train=64,test=32,size=16,mix=0.5", "synthetic"},
		{"cifar10", "cifar10"},
		{"cifar10:/work/shared/data", "cifar10"},
		{"cifar100:../data/cifar-100-binary.tar.gz", "cifar100"},
		{"/work/shared/data/cifar-10-binary.tar.gz", "cifar-10-binary"},
		{"../shared/data/cifar-10-binary.tar.gz", "cifar-10-binary"},
		{"./copy.tgz", "copy"},
		{"archive:../x/cifar-100-binary.tar.gz", "cifar-100-binary"},
		{"folder:/data/my images/", "my_images"},
		{"folder:..", "data"},
		{"../..", "data"},
		{"/data/a-very-long-name-of-an-archive-copy.tar.gz", "a-very-long-name-of-an-a"},
	} {
		got := dataName(tc.spec)
		if got != tc.want {
			t.Errorf("dataName(%q) = %q, want %q", tc.spec, got, tc.want)
		}
		if !safe.MatchString(got) {
			t.Errorf("dataName(%q) = %q: not a short safe name", tc.spec, got)
		}
	}
}
