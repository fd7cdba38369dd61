export declare enum ChatMode {
    Scroll = 0,
    Top = 1,
    Bottom = 2
}
