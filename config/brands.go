package config

import (
	"fmt"
	"slices"
)

// BrandsConfig says which brands are your own. A brand is named on a
// source (`brand:`, the same as `labels: {brand: …}`) or, for a source
// that watches several rooms, per room here; with Own set, every brand
// not listed in it is a competitor. Items carry the labels brand and
// (with Own set) brand_role, own or competitor, which the dashboard and
// the reports compare side by side.
type BrandsConfig struct {
	Own []string `yaml:"own"`
	// Rooms maps a room id to its brand; it overrides the source's.
	Rooms map[string]string `yaml:"rooms"`
}

// Brand roles (the brand_role label).
const (
	BrandOwn        = "own"
	BrandCompetitor = "competitor"
)

// BrandRole is own for a brand listed in brands.own, else competitor;
// "" when brands.own is empty (no brand is anyone's own, so none is a
// competitor either).
func (b BrandsConfig) BrandRole(brand string) string {
	switch {
	case len(b.Own) == 0:
		return ""
	case slices.Contains(b.Own, brand):
		return BrandOwn
	}
	return BrandCompetitor
}

// applyBrands turns each source's brand into its brand and brand_role
// labels.
func (c *Config) applyBrands() {
	for i := range c.Sources {
		s := &c.Sources[i]
		brand := s.Brand
		if brand == "" {
			brand = s.Labels["brand"]
		}
		if brand == "" {
			continue
		}
		labels := make(map[string]string, len(s.Labels)+2)
		for k, v := range s.Labels {
			labels[k] = v
		}
		if _, set := labels["brand"]; !set {
			labels["brand"] = brand
		}
		if role := c.Brands.BrandRole(labels["brand"]); role != "" {
			labels["brand_role"] = role
		}
		s.Labels = labels
	}
}

func (c *Config) validateBrands() []error {
	var errs []error
	for i, s := range c.Sources {
		if s.Brand != "" && s.Labels["brand"] != s.Brand {
			errs = append(errs, ferr(s.Line, fmt.Sprintf("sources[%d].brand", i), "%q differs from labels.brand %q: give one", s.Brand, s.Labels["brand"]))
		}
	}
	named := map[string]bool{}
	for _, s := range c.Sources {
		if b := s.Labels["brand"]; b != "" {
			named[b] = true
		}
	}
	for room, b := range c.Brands.Rooms {
		if b == "" {
			errs = append(errs, ferr(c.lineOf("brands", "rooms"), "brands.rooms."+room, "names no brand"))
		}
		named[b] = true
	}
	for i, b := range c.Brands.Own {
		if !named[b] {
			errs = append(errs, ferr(c.lineOf("brands", "own"), fmt.Sprintf("brands.own[%d]", i), "%q is the brand of no source or room (give a source `brand: %s`)", b, b))
		}
	}
	return errs
}
