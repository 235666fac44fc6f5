module sylvanpeers

go 1.19
