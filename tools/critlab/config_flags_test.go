package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/critlab/critlab/runs"
	"github.com/urfave/cli/v2"
)

// fileOnly are the config keys with no train flag: set in a config file
// (or by sweeps), or, for device and threads, by runtimeFlags.
var fileOnly = []string{"deficits", "param_groups", "cuda", "branch_from", "branch_epoch", "device", "threads"}

// Every config field is a flag or deliberately file-only, every flag names
// a field, and each flag's default is runs.Default()'s value.
func TestConfigFlags(t *testing.T) {
	def := runs.Default()
	flags := map[string]cli.Flag{}
	for _, f := range configFlags() {
		flags[f.Names()[0]] = f
	}
	var walk func(typ reflect.Type, prefix string)
	walk = func(typ reflect.Type, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			key = prefix + key
			if slices.Contains(fileOnly, key) {
				continue
			}
			if ft := typ.Field(i).Type; ft.Kind() == reflect.Struct {
				walk(ft, key+".")
				continue
			}
			i := slices.IndexFunc(configFields, func(f configField) bool { return f.key == key })
			if i < 0 {
				t.Errorf("config key %s: neither in configFields nor in fileOnly", key)
				continue
			}
			f := configFields[i]
			fl, ok := flags[f.name()]
			if !ok {
				t.Errorf("config key %s: no flag --%s", key, f.name())
				continue
			}
			want := configValue(reflect.ValueOf(&def), key).Interface()
			if g, ok := fl.(cli.DocGenerationFlag); ok && reflect.ValueOf(want).Kind() != reflect.Slice {
				if got := strings.Trim(g.GetDefaultText(), `"`); got != fmt.Sprint(want) {
					t.Errorf("--%s: default %q, want %v", f.name(), got, want)
				}
			}
		}
	}
	walk(reflect.TypeOf(runs.Config{}), "")
}
