module gotrace/gen-isprint

go 1.23
