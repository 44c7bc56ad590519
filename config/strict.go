package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// selfChecked is implemented by config types that check their own keys (a
// source block, whose keys depend on its kind).
type selfChecked interface {
	checkYAML(n *yaml.Node, path string) error
}

var (
	unmarshalerType  = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	selfCheckedType  = reflect.TypeOf((*selfChecked)(nil)).Elem()
	lineCapturerType = reflect.TypeOf((*lineCapturer)(nil)).Elem()
)

// lineCapturer marks structs whose UnmarshalYAML only records the line: they
// are checked field by field like any struct.
type lineCapturer interface{ capturesLine() }

// decodeStrict checks every key of n against v's yaml tags, decodes every
// scalar so that a type error names its field, then decodes n into v.
func decodeStrict(n *yaml.Node, v any, path string) error {
	if err := check(n, reflect.TypeOf(v), path); err != nil {
		return err
	}
	if err := n.Decode(v); err != nil {
		return fmt.Errorf("%d: %s", n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// DecodeStrict is decodeStrict for other packages' config blocks: it fails
// on a key v has no field for, naming the field and line, and on a value of
// the wrong type. skip lists keys handled elsewhere.
func DecodeStrict(n *yaml.Node, v any, path string, skip ...string) error {
	t := reflect.TypeOf(v)
	if n == nil {
		return nil
	}
	if n.Kind == yaml.MappingNode && len(skip) > 0 {
		trimmed := *n
		trimmed.Content = nil
		for i := 0; i+1 < len(n.Content); i += 2 {
			if contains(skip, n.Content[i].Value) {
				continue
			}
			trimmed.Content = append(trimmed.Content, n.Content[i], n.Content[i+1])
		}
		n = &trimmed
	}
	if err := check(n, t, path); err != nil {
		return err
	}
	if err := n.Decode(v); err != nil {
		return &FieldError{Line: n.Line, Field: path, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func check(n *yaml.Node, t reflect.Type, path string) error {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	pt := t
	if t.Kind() != reflect.Pointer {
		pt = reflect.PointerTo(t)
	}
	if pt.Implements(selfCheckedType) {
		return reflect.New(pt.Elem()).Interface().(selfChecked).checkYAML(n, path)
	}
	if pt.Implements(unmarshalerType) && !pt.Implements(lineCapturerType) {
		if err := n.Decode(reflect.New(pt.Elem()).Interface()); err != nil {
			// An UnmarshalYAML that knows the line (and the part of its
			// value) at fault says so with a FieldError.
			var fe *FieldError
			if errors.As(err, &fe) {
				line := fe.Line
				if line == 0 {
					line = n.Line
				}
				return ferr(line, path+fe.Field, "%s", fe.Msg)
			}
			return ferr(n.Line, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return ferr(n.Line, path, "expected a mapping of keys")
		}
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				return ferr(k.Line, join(path, k.Value), "unknown field (known: %s)", knownList(fields))
			}
			if err := check(val, ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			break
		}
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String {
				return ferr(n.Line, path, "expected a list, e.g. [a, b]")
			}
			return ferr(n.Line, path, "expected a list")
		}
		for i, c := range n.Content {
			if err := check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return ferr(n.Line, path, "expected a mapping")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Interface:
		// any: accept whatever is there.
	default:
		if n.Kind != yaml.ScalarNode {
			return ferr(n.Line, path, "expected a single %s value", t.Kind())
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return ferr(n.Line, path, "cannot use %q as %s", n.Value, kindName(t))
		}
	}
	return nil
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps yaml keys to field types, following inline fields.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func knownList(fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
