package runs

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes the YAML document data into v (a pointer to a
// struct, possibly holding values already), whose keys are those of the
// struct type schema (nil: v's own type). Keys spelled the old way
// (aliases: dotted path -> current key, e.g. "train_subset" -> "subset")
// are read as the current key. A key that names no field is refused in
// plain words, with the nearest valid key, rather than with yaml's Go type
// names, and so is a fractional number for a whole-number key (yaml would
// truncate it). Empty data leaves v as it is.
func decodeStrict(data []byte, v any, schema reflect.Type, aliases map[string]string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil
	}
	if schema == nil {
		schema = reflect.TypeOf(v).Elem()
	}
	if err := checkKeys(doc.Content[0], schema, "", aliases); err != nil {
		return err
	}
	return doc.Content[0].Decode(v)
}

// checkKeys renames aliased keys of the mapping n and refuses unknown ones,
// recursing into the fields of struct type t, and refuses fractions for
// integer fields.
func checkKeys(n *yaml.Node, t reflect.Type, path string, aliases map[string]string) error {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode {
			for _, item := range n.Content {
				if err := checkKeys(item, t.Elem(), path, aliases); err != nil {
					return err
				}
			}
			return nil
		}
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && isInteger(t.Kind()) {
		return checkWhole(n, strings.TrimSuffix(path, "."))
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(yaml.Node{}) || n.Kind != yaml.MappingNode {
		return nil // scalars, and type mismatches yaml itself reports
	}
	fields := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		if now, ok := aliases[path+key.Value]; ok {
			key.Value = now
		}
		if line, dup := seen[key.Value]; dup {
			return fmt.Errorf("line %d: key %s%s given twice (first on line %d; an old spelling counts as the same key)", key.Line, path, key.Value, line)
		}
		seen[key.Value] = key.Line
		ft, ok := fields[key.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key %q%s", key.Line, path+key.Value, suggestKey(key.Value, path, fields))
		}
		if err := checkKeys(n.Content[i+1], ft, path+key.Value+".", aliases); err != nil {
			return err
		}
	}
	return nil
}

func isInteger(k reflect.Kind) bool {
	return reflect.Int <= k && k <= reflect.Uint64
}

// checkWhole refuses a number with a fractional part for the integer key
// (yaml.v3 decodes 10.9 into an int as 10). A whole float such as 1e3 or
// 10.0 decodes exactly and is accepted; other mismatches yaml reports.
func checkWhole(n *yaml.Node, key string) error {
	if n.ShortTag() != "!!float" {
		return nil
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		return nil // yaml reports it
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		return fmt.Errorf("line %d: %s %s is not a whole number (the key takes an integer)", n.Line, key, n.Value)
	}
	return nil
}

// yamlFields maps the YAML keys of struct type t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// suggestKey names the valid key nearest to key, or lists them all when
// none is near.
func suggestKey(key, path string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, dist := "", len(key)/3+2 // nearer than this is a typo
	for _, k := range names {
		if d := editDistance(key, k); d < dist {
			best, dist = k, d
		}
	}
	for _, k := range names { // a part of a key: epoch for epochs, subset for train_subset
		if best == "" && (strings.Contains(k, key) || strings.Contains(key, k)) {
			best = k
		}
	}
	if best != "" {
		return fmt.Sprintf(": did you mean %q?", path+best)
	}
	where := "here"
	if path != "" {
		where = "under " + strings.TrimSuffix(path, ".")
	}
	return fmt.Sprintf(": the keys %s are %s", where, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// hashKeys are the keys renamed since configs were first hashed: a
// config's hash is taken over its YAML with the old names, so that run
// directories written before the rename keep their hash and resume.
var hashKeys = map[string]string{"subset": "train_subset"}

// legacyYAML rewrites the top-level keys of a marshalled config to the
// names of hashKeys. yaml indents nested keys, so only top-level keys
// start a line.
func legacyYAML(out []byte) []byte {
	for now, old := range hashKeys {
		out = bytes.Replace(out, []byte("\n"+now+": "), []byte("\n"+old+": "), 1)
	}
	return out
}
