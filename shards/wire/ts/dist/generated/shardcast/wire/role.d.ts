export declare enum Role {
    Viewer = 0,
    Speaker = 1,
    Admin = 2
}
