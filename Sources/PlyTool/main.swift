print("ply")
