// Package layers holds the test that keeps the packages on their floors:
// each package may import only packages on its own layer or below, so
// the picture of the imports has no arrow from a lower package to one
// that imports it. The layers are declared in layers_test.go; a new
// package must be given one.
package layers
