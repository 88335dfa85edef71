//! The console's words, in Chinese and English, from one catalogue: every
//! string a page shows is a [`Msg`], so a page cannot show text that has no
//! translation. Chinese is the default; each person picks a language.

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文, the default: the domain's users are Chinese government staff.
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The language a cookie or query value names, if any.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Its code, for `lang` attributes and cookies.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The short code the switch uses.
    pub fn short(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// Every text the console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Msg {
    Title,
    SignIn,
    SignOut,
    TokenLabel,
    TokenHelp,
    BadToken,
    SignedInAs,
    Queue,
    QueueEmpty,
    Output,
    State,
    Organization,
    Grant,
    Label,
    Checks,
    Waiting,
    Votes,
    FilterState,
    AllStates,
    Apply,
    SortBy,
    Newest,
    Oldest,
    Content,
    ContentLegend,
    FlaggedCells,
    Check,
    Status,
    Remedy,
    Summary,
    Lineage,
    Job,
    Operator,
    Module,
    Datasets,
    Queries,
    Refused,
    JobLog,
    JobError,
    VotesHidden,
    VoteBy,
    Decide,
    Approve,
    Reject,
    Return,
    Reason,
    Override,
    Justification,
    NoVoteHere,
    Tampered,
    TamperedHelp,
    Forbidden,
    CsrfFailed,
    NotFound,
    VoteRefused,
    VoteRecorded,
    Language,
    Minutes,
    Hours,
    Days,
    Header,
    Row,
    NotForOperators,
    Busy,
    Destroyed,
    Unrenderable,
    PageOf,
    Previous,
    Next,
    ReadAllFirst,
    NotAllPages,
    Cells,
    Null,
    MoreChars,
    MoreColumns,
    InternalError,
    Ledger,
    Search,
    EventType,
    Time,
    Entry,
    Details,
    VerifyLedger,
    Verified,
    LedgerTampered,
    InclusionProof,
    TreeSize,
    LeafHash,
    Root,
    ProofPath,
    NoEntries,
    AnyType,
}

/// The text of `msg` in `lang`.
pub fn t(lang: Lang, msg: Msg) -> &'static str {
    use Msg::*;
    let (zh, en) = match msg {
        Title => ("Inland 可信数据空间 · 控制台", "Inland trusted domain · console"),
        SignIn => ("登录", "Sign in"),
        SignOut => ("退出", "Sign out"),
        TokenLabel => ("访问令牌", "Access token"),
        TokenHelp => (
            "粘贴管理员发给您的令牌（inl_ 开头）。令牌只保存在本服务器的会话中。",
            "Paste the token an admin issued you (it starts with inl_). It is kept only in this server's session.",
        ),
        BadToken => (
            "令牌无效、已过期或已吊销。",
            "The token is not valid, has expired or was revoked.",
        ),
        SignedInAs => ("当前用户", "Signed in as"),
        Queue => ("待审核队列", "Release queue"),
        QueueEmpty => ("没有待审核的输出。", "No outputs are waiting."),
        Output => ("输出", "Output"),
        State => ("状态", "State"),
        Organization => ("运营机构", "Operator"),
        Grant => ("授权", "Grant"),
        Label => ("标签", "Label"),
        Checks => ("检查结果", "Checks"),
        Waiting => ("等待时间", "Waiting"),
        Votes => ("投票", "Votes"),
        FilterState => ("按状态筛选", "Filter by state"),
        AllStates => ("全部", "All"),
        Apply => ("应用", "Apply"),
        SortBy => ("排序", "Sort"),
        Newest => ("最新优先", "Newest first"),
        Oldest => ("等待最久优先", "Waiting longest first"),
        Content => ("内容", "Content"),
        ContentLegend => (
            "标记的单元格：红色未通过检查（发布时将被抑制），黄色需人工审核。悬停可查看原因。",
            "Marked cells: red failed a check (suppressed in the release), yellow needs review. Hover for the reason.",
        ),
        FlaggedCells => ("被标记的单元格", "Flagged cells"),
        Check => ("检查", "Check"),
        Status => ("结果", "Status"),
        Remedy => ("处理", "Remedy"),
        Summary => ("说明", "Summary"),
        Lineage => ("来源", "Lineage"),
        Job => ("作业", "Job"),
        Operator => ("运营者", "Operator"),
        Module => ("组件", "Component"),
        Datasets => ("数据集", "Datasets"),
        Queries => ("查询（隔离文本）", "Queries (quarantined text)"),
        Refused => ("已拒绝", "refused"),
        JobLog => ("作业日志（隔离文本）", "Job log (quarantined text)"),
        JobError => ("作业错误", "Job error"),
        VotesHidden => (
            "已有部分投票；全部审核人投票后才显示。",
            "Some votes are in; they are shown once every reviewer has voted.",
        ),
        VoteBy => ("投票人", "by"),
        Decide => ("审核决定", "Decision"),
        Approve => ("批准发布", "Approve"),
        Reject => ("拒绝", "Reject"),
        Return => ("退回修改", "Return for changes"),
        Reason => ("理由", "Reason"),
        Override => ("覆盖此项检查", "Override this check"),
        Justification => ("覆盖的书面理由", "Written justification for overrides"),
        NoVoteHere => (
            "您不能对此输出投票（已投票、审核已结束，或您属于该运营机构）。",
            "You cannot vote on this output (you voted, the review is over, or you work for its operator).",
        ),
        Tampered => (
            "警告：此输出的密封文件无法打开——已被篡改，或其密钥已销毁。",
            "ALARM: this output's sealed file does not open — it was tampered with, or its key was destroyed.",
        ),
        TamperedHelp => (
            "不要批准。此事件已记录在证据账本中；请通知管理员。",
            "Do not approve. This was recorded in the evidence ledger; tell an admin.",
        ),
        Forbidden => ("您无权执行此操作。", "You may not do this."),
        CsrfFailed => (
            "表单已过期或来自别处，未执行任何操作。请重新打开页面。",
            "The form is stale or came from elsewhere; nothing was done. Open the page again.",
        ),
        NotFound => ("未找到。", "Not found."),
        VoteRefused => ("投票未被接受：", "The vote was not accepted: "),
        VoteRecorded => ("投票已记录。", "Vote recorded."),
        Language => ("语言", "Language"),
        Minutes => ("分钟", "min"),
        Hours => ("小时", "h"),
        Days => ("天", "d"),
        Header => ("表头", "header"),
        Row => ("行", "row"),
        NotForOperators => (
            "控制台供审核人、管理员和审计人使用；运营者请使用命令行或接口。",
            "The console is for reviewers, admins and auditors; operators use the CLI or the API.",
        ),
        Busy => (
            "当前登录会话已满，请稍后再试。",
            "Every session is in use; try again later.",
        ),
        Destroyed => (
            "此输出已随其授权终止而销毁。",
            "This output was destroyed when its grant was terminated.",
        ),
        Unrenderable => (
            "此输出无法显示（文件可以打开，但内容无法转换为文本）。请勿批准；请通知管理员。",
            "This output cannot be shown (its file opens, but its content cannot be turned into text). Do not approve; tell an admin.",
        ),
        PageOf => ("页", "page"),
        Previous => ("上一页", "Previous page"),
        Next => ("下一页", "Next page"),
        ReadAllFirst => (
            "批准会发布所有行：请先阅读每一页，再批准。尚未阅读的第一页：",
            "Approval releases every row: read every page before approving. First page not yet read: ",
        ),
        NotAllPages => (
            "您尚未阅读此输出的每一页，不能批准。",
            "You have not read every page of this output, so you cannot approve it.",
        ),
        Cells => ("单元格数", "Cells"),
        Null => ("空值", "null"),
        MoreChars => ("个字符未显示", "more characters not shown"),
        MoreColumns => (
            "列未显示（请通过接口阅读）",
            "more columns not shown (read them through the API)",
        ),
        InternalError => ("服务器内部错误，已记录。", "Internal error; it was logged."),
        Ledger => ("证据账本", "Evidence ledger"),
        Search => ("查找", "Search"),
        EventType => ("事件类型", "Event type"),
        Time => ("时间（UTC）", "Time (UTC)"),
        Entry => ("条目", "Entry"),
        Details => ("内容", "Details"),
        VerifyLedger => ("验证整个账本", "Verify the whole ledger"),
        Verified => (
            "账本验证通过：每个哈希和签名都正确。",
            "The ledger verifies: every hash and signature is right.",
        ),
        LedgerTampered => ("账本被篡改：", "THE LEDGER IS TAMPERED: "),
        InclusionProof => ("包含证明", "Inclusion proof"),
        TreeSize => ("树大小", "Tree size"),
        LeafHash => ("叶哈希", "Leaf hash"),
        Root => ("根哈希", "Root"),
        ProofPath => ("证明路径", "Proof path"),
        NoEntries => ("没有符合条件的条目。", "No entries match."),
        AnyType => ("全部类型", "Any type"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}
