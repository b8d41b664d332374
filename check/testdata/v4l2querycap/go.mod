module querycap

go 1.21
